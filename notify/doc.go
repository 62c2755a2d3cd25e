// Package notify sends offtrail signals to people: Slack, PagerDuty, a
// generic signed webhook, email, ServiceNow incidents, Zendesk tickets, SMS
// through Amazon SNS, Microsoft Teams and Opsgenie, with retries and
// suppression so that one incident is one message.
//
// It is a top-level folder of its own because none of the folders DESIGN.md
// lays out is a natural home: notifications are neither detection
// (detector), scheduling (schedule) nor index layout (mappings), and the
// integrations talk to third-party services rather than to the engines.
//
// The shape follows Alertmanager: a small Notifier interface whose Notify
// says whether a failure is worth retrying, one package per integration
// (notify/slack, notify/pagerduty, notify/webhook, notify/email,
// notify/servicenow, notify/zendesk, notify/sns, notify/teams,
// notify/opsgenie), secrets as a Secret type that never prints, and a
// Dispatcher that routes a rule's signals to its channels, suppresses
// repeats and retries with backoff.
// notify/channels reads the YAML configuration and builds the Dispatcher.
package notify
