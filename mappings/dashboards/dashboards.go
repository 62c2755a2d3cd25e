// Package dashboards holds offtrail's OpenSearch Dashboards 2 saved
// objects: index patterns on the signals and on CloudTrail (ECS and raw),
// the alerts dashboard and its visualizations, and saved searches.
// `offtrail dashboards install --dashboards` imports them; Dashboards
// Management → Saved objects → Import takes the same file.
package dashboards

import _ "embed"

// SavedObjects is offtrail.ndjson, in the saved objects export format.
//
//go:embed offtrail.ndjson
var SavedObjects []byte

// FileName is the name the import API is given for SavedObjects.
const FileName = "offtrail.ndjson"
