package cloudtrail

import "strings"

// categorize gives ECS event.category and event.type. Sign-ins and STS
// credential calls are authentication; IAM calls are iam, typed by verb and
// by what they touch (user, group, or otherwise admin); S3 bucket creation
// and deletion are file; everything else is plain info, as in the AWS
// integration.
func categorize(action, provider string) (category, typ []any) {
	switch action {
	case "ConsoleLogin", "GetSigninToken", "AssumeRole", "AssumeRoleWithSAML",
		"AssumeRoleWithWebIdentity", "GetSessionToken", "GetFederationToken":
		return []any{"authentication"}, []any{"info"}
	case "CreateBucket":
		return []any{"file"}, []any{"creation"}
	case "DeleteBucket":
		return []any{"file"}, []any{"deletion"}
	}
	if provider != "iam.amazonaws.com" {
		return nil, []any{"info"}
	}
	object := "admin"
	switch {
	case strings.Contains(action, "Group"):
		object = "group"
	case strings.Contains(action, "User") || strings.Contains(action, "AccessKey") ||
		strings.Contains(action, "MFADevice") || strings.Contains(action, "LoginProfile") ||
		strings.Contains(action, "SSHPublicKey") || action == "ChangePassword":
		object = "user"
	}
	verb := "change"
	switch {
	case strings.HasPrefix(action, "Get"), strings.HasPrefix(action, "List"),
		strings.HasPrefix(action, "Describe"), strings.HasPrefix(action, "Generate"),
		strings.HasPrefix(action, "Simulate"):
		verb = "info"
	case strings.HasPrefix(action, "Create") && !strings.Contains(action, "AccessKey") &&
		!strings.Contains(action, "MFADevice") && !strings.Contains(action, "LoginProfile"):
		verb = "creation"
	case strings.HasPrefix(action, "Delete") && !strings.Contains(action, "Policy") &&
		!strings.Contains(action, "AccessKey") && !strings.Contains(action, "MFADevice") &&
		!strings.Contains(action, "SSHPublicKey") && !strings.Contains(action, "PermissionsBoundary") &&
		!strings.Contains(action, "LoginProfile"):
		verb = "deletion"
	}
	return []any{"iam"}, []any{object, verb}
}
