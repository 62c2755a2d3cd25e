// Package kibana holds offtrail's Kibana 8 saved objects: data views on the
// signals and the CloudTrail indices, the alerts dashboard and its
// visualizations, and saved searches. `offtrail dashboards install --kibana`
// imports them; Kibana's Stack Management → Saved objects → Import takes the
// same file.
package kibana

import _ "embed"

// SavedObjects is offtrail.ndjson, in the saved objects export format.
//
//go:embed offtrail.ndjson
var SavedObjects []byte

// FileName is the name the import API is given for SavedObjects.
const FileName = "offtrail.ndjson"
