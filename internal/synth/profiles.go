package synth

import (
	"fmt"
	"strconv"
	"strings"
)

// Behaviour profiles, as data. Each action list is "service:Name weight"
// pairs; an identity's own table is a reshuffled, Zipf-weighted subset of
// its role's list, so people in the same role are alike but not identical.

// tool is how a person calls AWS.
type tool int

const (
	toolConsole tool = iota
	toolCLI
	toolSDK
)

type humanRole struct {
	name     string
	permSet  string    // IAM Identity Center permission set
	rate     float64   // calls per working hour
	tools    []float64 // console, cli, sdk
	accounts []float64 // prod, staging, security
	iamUser  float64   // share of people with a legacy IAM user instead of SSO
	errRate  float64
	actions  string
}

var humanRoles = map[string]*humanRole{
	"admin": {name: "admin", permSet: "AdministratorAccess", rate: 38, tools: []float64{0.5, 0.45, 0.05}, accounts: []float64{4, 3, 2}, iamUser: 0.3, errRate: 0.012, actions: `
		ec2:DescribeInstances 30 ec2:DescribeSecurityGroups 14 ec2:DescribeVpcs 8 ec2:DescribeSubnets 7 ec2:DescribeVolumes 5
		ec2:DescribeRouteTables 3 ec2:DescribeNetworkInterfaces 3 ec2:DescribeAddresses 2 ec2:DescribeImages 3 ec2:DescribeKeyPairs 1
		ec2:DescribeAvailabilityZones 2 ec2:DescribeInstanceStatus 3 ec2:DescribeTags 2 ec2:CreateTags 1.5 ec2:StopInstances 0.3
		ec2:StartInstances 0.3 ec2:RunInstances 0.2 ec2:TerminateInstances 0.2 ec2:AuthorizeSecurityGroupIngress 0.2 ec2:ModifyInstanceAttribute 0.1
		iam:ListRoles 10 iam:GetRole 9 iam:ListAttachedRolePolicies 6 iam:ListRolePolicies 4 iam:ListPolicies 4 iam:GetPolicy 3
		iam:GetPolicyVersion 3 iam:ListUsers 4 iam:GetUser 2 iam:ListAccessKeys 1.5 iam:ListGroups 1 iam:GetAccountSummary 1
		iam:PutRolePolicy 0.3 iam:AttachRolePolicy 0.2 iam:CreatePolicyVersion 0.2 iam:TagRole 0.3 iam:CreateRole 0.08 iam:ListInstanceProfiles 1
		s3:ListBuckets 10 s3:GetBucketLocation 6 s3:GetBucketPolicy 4 s3:GetBucketAcl 2 s3:GetBucketVersioning 2 s3:GetBucketEncryption 2
		s3:GetBucketPublicAccessBlock 2 s3:GetBucketTagging 2 s3:PutBucketTagging 0.3 s3:PutBucketPolicy 0.08
		kms:ListKeys 2 kms:ListAliases 2 kms:DescribeKey 2 sts:GetCallerIdentity 8
		cloudtrail:DescribeTrails 1 cloudtrail:GetTrailStatus 1 cloudtrail:LookupEvents 2
		organizations:DescribeOrganization 2 organizations:ListAccounts 2 monitoring:DescribeAlarms 3 monitoring:GetMetricData 4
		logs:DescribeLogGroups 2 rds:DescribeDBInstances 2 lambda:ListFunctions20150331 2 route53:ListHostedZones 1
		route53:ListResourceRecordSets 1 route53:ChangeResourceRecordSets 0.1 ce:GetCostAndUsage 1.5 health:DescribeEventAggregates 2
		cloudformation:DescribeStacks 2 elasticloadbalancing:DescribeLoadBalancers 2 eks:ListClusters 1 eks:DescribeCluster 1`},
	"developer": {name: "developer", permSet: "DeveloperAccess", rate: 42, tools: []float64{0.35, 0.5, 0.15}, accounts: []float64{2, 6, 0}, iamUser: 0.05, errRate: 0.015, actions: `
		lambda:ListFunctions20150331 10 lambda:GetFunction20150331v2 12 lambda:GetFunctionConfiguration20150331v2 5
		lambda:ListVersionsByFunction20150331 2 lambda:ListEventSourceMappings20150331 2 lambda:GetPolicy20150331v2 1
		lambda:UpdateFunctionCode20150331v2 1.5 lambda:UpdateFunctionConfiguration20150331v2 0.8 lambda:PublishVersion20150331 0.5
		lambda:UpdateAlias20150331 0.4 lambda:Invoke 2 lambda:CreateFunction20150331 0.05
		logs:FilterLogEvents 14 logs:GetLogEvents 10 logs:DescribeLogStreams 8 logs:DescribeLogGroups 6 logs:StartQuery 3 logs:GetQueryResults 6
		monitoring:GetMetricData 8 monitoring:DescribeAlarms 3 monitoring:ListMetrics 2 monitoring:PutMetricAlarm 0.2
		ecr:DescribeRepositories 3 ecr:DescribeImages 4 ecr:GetAuthorizationToken 3 ecr:ListImages 2 ecr:DescribeImageScanFindings 1
		ecs:ListClusters 3 ecs:ListServices 4 ecs:DescribeServices 6 ecs:ListTasks 4 ecs:DescribeTasks 4 ecs:DescribeTaskDefinition 2 ecs:UpdateService 0.4
		dynamodb:ListTables 3 dynamodb:DescribeTable 5 dynamodb:Query 3 dynamodb:GetItem 3 dynamodb:DescribeTimeToLive 0.5
		s3:ListBuckets 5 s3:GetBucketLocation 3 s3:ListObjects 5 s3:GetObject 4 s3:PutObject 1.5 s3:HeadObject 1
		sqs:ListQueues 2 sqs:GetQueueAttributes 3 sqs:PurgeQueue 0.05
		ssm:GetParameter 3 ssm:GetParametersByPath 2 ssm:DescribeParameters 1.5 ssm:PutParameter 0.2
		secretsmanager:ListSecrets 1 secretsmanager:DescribeSecret 1 secretsmanager:GetSecretValue 0.4
		ec2:DescribeInstances 4 ec2:DescribeSecurityGroups 1 sts:GetCallerIdentity 6 cloudformation:DescribeStacks 2 cloudformation:DescribeStackEvents 1.5
		cloudformation:ListStacks 1 kms:Decrypt 1 iam:GetRole 1 iam:ListRoles 0.5`},
	"dataeng": {name: "dataeng", permSet: "DataEngineer", rate: 40, tools: []float64{0.3, 0.3, 0.4}, accounts: []float64{6, 2, 0}, iamUser: 0.25, errRate: 0.02, actions: `
		glue:GetTables 10 glue:GetTable 12 glue:GetDatabases 5 glue:GetPartitions 6 glue:GetJobs 3 glue:GetJobRun 6 glue:GetJobRuns 5
		glue:StartJobRun 1.5 glue:GetCrawler 2 glue:StartCrawler 0.6 glue:UpdateTable 0.4 glue:CreateTable 0.1
		athena:StartQueryExecution 10 athena:GetQueryExecution 18 athena:GetQueryResults 12 athena:ListWorkGroups 2 athena:GetWorkGroup 2
		athena:ListDataCatalogs 1 athena:ListQueryExecutions 2
		s3:ListBuckets 6 s3:GetBucketLocation 8 s3:ListObjects 10 s3:GetObject 10 s3:PutObject 3 s3:HeadObject 3 s3:DeleteObject 0.4
		rds:DescribeDBInstances 2 rds:DescribeDBClusters 1 kms:Decrypt 3 kms:GenerateDataKey 1 sts:GetCallerIdentity 4
		logs:FilterLogEvents 3 logs:DescribeLogStreams 2 monitoring:GetMetricData 2 dynamodb:DescribeTable 1 dynamodb:Query 1
		lambda:ListFunctions20150331 1 lambda:GetFunction20150331v2 1 ssm:GetParameter 1 secretsmanager:GetSecretValue 0.3`},
	"auditor": {name: "auditor", permSet: "SecurityAudit", rate: 20, tools: []float64{0.6, 0.35, 0.05}, accounts: []float64{2, 1, 5}, errRate: 0.03, actions: `
		iam:ListUsers 6 iam:ListRoles 6 iam:GetRole 4 iam:ListAttachedUserPolicies 3 iam:ListAttachedRolePolicies 3 iam:ListAccessKeys 3
		iam:ListMFADevices 2 iam:GetAccountPasswordPolicy 1 iam:GetAccountSummary 2 iam:GenerateCredentialReport 0.5 iam:GetCredentialReport 0.5
		iam:GetAccountAuthorizationDetails 0.4 iam:ListPolicies 2 iam:GetPolicyVersion 2 iam:ListSSHPublicKeys 0.5
		cloudtrail:DescribeTrails 3 cloudtrail:GetTrailStatus 2 cloudtrail:GetEventSelectors 2 cloudtrail:LookupEvents 6
		config:DescribeConfigRules 3 config:DescribeComplianceByConfigRule 4 config:GetComplianceDetailsByConfigRule 4 config:DescribeConfigurationRecorders 1
		guardduty:ListDetectors 2 guardduty:ListFindings 5 guardduty:GetFindings 6 guardduty:GetDetector 1
		securityhub:GetFindings 8 securityhub:DescribeHub 1 securityhub:BatchUpdateFindings 0.5
		access-analyzer:ListAnalyzers 1 access-analyzer:ListFindings 3
		s3:ListBuckets 4 s3:GetBucketPolicy 4 s3:GetBucketAcl 3 s3:GetBucketPublicAccessBlock 3 s3:GetBucketEncryption 3 s3:GetBucketVersioning 1
		ec2:DescribeSecurityGroups 5 ec2:DescribeInstances 3 ec2:DescribeVpcs 1 kms:ListKeys 1 kms:GetKeyPolicy 2 kms:GetKeyRotationStatus 2
		organizations:ListAccounts 1 organizations:ListPoliciesForTarget 1 sts:GetCallerIdentity 3`},
	"oncall": {name: "oncall", permSet: "SREAccess", rate: 34, tools: []float64{0.4, 0.55, 0.05}, accounts: []float64{6, 2, 0.3}, iamUser: 0.1, errRate: 0.015, actions: `
		monitoring:DescribeAlarms 10 monitoring:GetMetricData 14 monitoring:GetMetricStatistics 5 monitoring:DescribeAlarmHistory 3
		logs:StartQuery 5 logs:GetQueryResults 9 logs:FilterLogEvents 8 logs:DescribeLogGroups 3 logs:GetLogEvents 4
		ec2:DescribeInstances 12 ec2:DescribeInstanceStatus 6 ec2:DescribeVolumes 2 ec2:RebootInstances 0.3 ec2:StopInstances 0.2 ec2:StartInstances 0.2
		autoscaling:DescribeAutoScalingGroups 5 autoscaling:DescribeScalingActivities 3 autoscaling:SetDesiredCapacity 0.4 autoscaling:UpdateAutoScalingGroup 0.2
		ecs:DescribeServices 6 ecs:ListTasks 4 ecs:DescribeTasks 4 ecs:UpdateService 0.5 ecs:ListClusters 2
		rds:DescribeDBInstances 5 rds:DescribeEvents 2 rds:DescribeDBClusters 2 rds:RebootDBInstance 0.1 rds:ModifyDBInstance 0.1
		elasticloadbalancing:DescribeTargetHealth 5 elasticloadbalancing:DescribeTargetGroups 3 elasticloadbalancing:DescribeLoadBalancers 2
		ssm:DescribeInstanceInformation 3 ssm:StartSession 1 ssm:TerminateSession 0.8 ssm:SendCommand 0.3 ssm:GetCommandInvocation 0.6
		health:DescribeEventAggregates 2 sts:GetCallerIdentity 4 route53:ListResourceRecordSets 1 sqs:GetQueueAttributes 2 sqs:ListQueues 1
		eks:DescribeCluster 1 lambda:GetFunction20150331v2 2 dynamodb:DescribeTable 1`},
}

// humanRoleCycle assigns roles in order: mostly developers, then data
// engineers, administrators, on-call SREs and an auditor or two.
var humanRoleCycle = []string{"developer", "developer", "dataeng", "admin", "developer", "oncall", "developer", "auditor", "dataeng", "developer", "oncall", "admin"}

var (
	browserUAs = []string{
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:127.0) Gecko/20100101 Firefox/127.0",
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Safari/537.36",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0",
	}
	// cliUAs end in "command/": the aws-cli appends the command it runs.
	cliUAs = []string{
		"aws-cli/2.15.30 Python/3.11.8 Darwin/23.4.0 exe/x86_64 prompt/off command/",
		"aws-cli/2.17.5 Python/3.11.9 Darwin/23.5.0 exe/arm64 prompt/off command/",
		"aws-cli/2.13.25 Python/3.11.5 Linux/6.5.0-41-generic exe/x86_64.ubuntu.22 prompt/off command/",
		"aws-cli/2.16.12 Python/3.11.8 Windows/10 exe/AMD64 prompt/off command/",
		"aws-cli/2.17.20 Python/3.11.9 Linux/6.8.0-1008-aws exe/x86_64.ubuntu.24 prompt/off command/",
	}
	sdkUAs = []string{
		"Boto3/1.34.131 md/Botocore#1.34.131 ua/2.0 os/macos#23.5.0 md/arch#arm64 lang/python#3.12.4 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.131",
		"Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#6.5.0-41-generic md/arch#x86_64 lang/python#3.11.8 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.69",
		"aws-sdk-go-v2/1.30.3 os/macos lang/go#1.22.5 md/GOOS#darwin md/GOARCH#arm64 api/s3#1.58.2",
		"aws-sdk-java/2.25.60 Mac_OS_X/14.5 OpenJDK_64-Bit_Server_VM/21.0.3+9-LTS Java/21.0.3 vendor/Eclipse_Adoptium io/sync http/Apache cfg/retry-mode/legacy",
	}
)

// Automation kinds. Each has a planner in automation.go.
const (
	kindCI        = "ci"
	kindTerraform = "terraform"
	kindLambda    = "lambda"
	kindScheduled = "scheduled"
	kindService   = "service"       // an AWS service principal (AWSService)
	kindLinked    = "servicelinked" // a service-linked role
	kindScanner   = "scanner"
)

type autoTemplate struct {
	kind     string
	role     string // IAM role (service-linked role name for kindLinked)
	session  string // role session name
	invoked  string // AWS service principal for kindService / kindLinked
	ua       string // "…command/" means an aws-cli UA
	accounts []float64
	regions  []float64
	at       float64 // kindScheduled: UTC hour of day
	perHour  float64 // mean calls per hour (lambda, service) or runs per day (ci, linked)
	size     [2]int  // calls per run
	gap      float64 // mean seconds between calls in a run
	actions  string
}

var autoTemplates = []autoTemplate{
	{kind: kindCI, role: "github-actions-deploy", session: "GitHubActions", accounts: []float64{3, 7, 0}, regions: []float64{rUSEast1: 8, rEUWest1: 2},
		ua:      "aws-cli/2.17.20 md/awscrt#0.20.11 ua/2.0 os/linux#6.5.0-1025-azure md/arch#x86_64 lang/python#3.11.9 md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/distrib#ubuntu.22 md/prompt#off command/",
		perHour: 6, size: [2]int{25, 80}, gap: 2.5, actions: `
		sts:GetCallerIdentity 4 ecr:GetAuthorizationToken 6 ecr:BatchCheckLayerAvailability 12 ecr:InitiateLayerUpload 5 ecr:UploadLayerPart 10
		ecr:CompleteLayerUpload 5 ecr:PutImage 3 ecr:BatchGetImage 3 ecs:DescribeTaskDefinition 3 ecs:RegisterTaskDefinition 2 ecs:UpdateService 2
		ecs:DescribeServices 8 lambda:UpdateFunctionCode20150331v2 1.5 lambda:GetFunction20150331v2 3 lambda:PublishVersion20150331 1 lambda:UpdateAlias20150331 1
		s3:PutObject 4 cloudformation:DescribeStacks 2`},
	{kind: kindTerraform, role: "terraform-apply", session: "terraform", accounts: []float64{4, 4, 1}, regions: []float64{rUSEast1: 6, rEUWest1: 3, rUSWest2: 1, rAPSouth1: 1},
		ua:      "APN/1.0 HashiCorp/1.0 Terraform/1.9.5 (+https://www.terraform.io) terraform-provider-aws/5.64.0 (+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.30.4 ua/2.1 os/linux lang/go#1.22.6 md/GOOS#linux md/GOARCH#amd64 api/ec2#1.177.0",
		perHour: 0.35, size: [2]int{150, 500}, gap: 0.4, actions: `
		sts:GetCallerIdentity 3 ec2:DescribeVpcs 6 ec2:DescribeSubnets 6 ec2:DescribeSecurityGroups 8 ec2:DescribeRouteTables 4 ec2:DescribeInstances 5
		ec2:DescribeNetworkInterfaces 3 ec2:DescribeLaunchTemplates 3 ec2:DescribeImages 2 ec2:DescribeTags 4 ec2:DescribeAvailabilityZones 2 ec2:CreateTags 1
		ec2:CreateLaunchTemplateVersion 0.3 ec2:AuthorizeSecurityGroupIngress 0.2 iam:GetRole 8 iam:ListAttachedRolePolicies 5 iam:ListRolePolicies 5
		iam:GetPolicy 4 iam:GetPolicyVersion 4 iam:CreatePolicyVersion 0.2 iam:PutRolePolicy 0.2 iam:TagRole 0.3
		s3:GetBucketPolicy 4 s3:GetBucketAcl 3 s3:GetBucketVersioning 3 s3:GetBucketEncryption 3 s3:GetBucketTagging 3 s3:GetBucketPublicAccessBlock 3 s3:GetObject 2 s3:PutObject 1
		s3:PutBucketTagging 0.2 lambda:GetFunction20150331v2 4 lambda:ListVersionsByFunction20150331 2 lambda:GetPolicy20150331v2 2 lambda:UpdateFunctionConfiguration20150331v2 0.3
		dynamodb:DescribeTable 4 dynamodb:DescribeContinuousBackups 2 dynamodb:DescribeTimeToLive 2 dynamodb:GetItem 2 dynamodb:PutItem 1
		rds:DescribeDBInstances 3 rds:DescribeDBParameterGroups 2 rds:ModifyDBInstance 0.1 kms:DescribeKey 3 kms:GetKeyPolicy 2 kms:GetKeyRotationStatus 2
		logs:DescribeLogGroups 3 logs:PutRetentionPolicy 0.2 monitoring:DescribeAlarms 2 monitoring:PutMetricAlarm 0.3 ecs:DescribeClusters 2 ecs:DescribeServices 2
		ecs:DescribeTaskDefinition 2 elasticloadbalancing:DescribeLoadBalancers 2 elasticloadbalancing:DescribeTargetGroups 2 route53:ListResourceRecordSets 2
		sqs:GetQueueAttributes 2 ecr:DescribeRepositories 2 secretsmanager:DescribeSecret 2 ssm:GetParameter 2`},
	{kind: kindLambda, role: "orders-api-lambda", session: "orders-api", accounts: []float64{1, 0, 0}, regions: []float64{rUSEast1: 1},
		ua:      "aws-sdk-go-v2/1.30.3 os/linux lang/go#1.22.5 md/GOOS#linux md/GOARCH#amd64 exec-env/AWS_Lambda_provided.al2023 api/dynamodb#1.34.4",
		perHour: 28, size: [2]int{1, 3}, gap: 0.3, actions: `dynamodb:GetItem 10 dynamodb:Query 6 dynamodb:PutItem 4 dynamodb:UpdateItem 3 kms:Decrypt 2 ssm:GetParameter 1`},
	{kind: kindScheduled, role: "nightly-backup", session: "backup-job", accounts: []float64{1, 0, 0}, regions: []float64{rUSEast1: 3, rEUWest1: 1}, at: 2,
		ua:   "Boto3/1.34.100 md/Botocore#1.34.100 ua/2.0 os/linux#5.10.219-208.866.amzn2.x86_64 md/arch#x86_64 lang/python#3.11.9 md/pyimpl#CPython exec-env/AWS_ECS_FARGATE cfg/retry-mode#legacy Botocore/1.34.100",
		size: [2]int{30, 70}, gap: 4, actions: `rds:DescribeDBInstances 3 rds:DescribeDBSnapshots 6 rds:CreateDBSnapshot 2 rds:DeleteDBSnapshot 1.5 ec2:DescribeVolumes 4
		ec2:CreateSnapshot 4 ec2:DescribeSnapshots 6 ec2:DeleteSnapshot 2 ec2:CreateTags 3 dynamodb:DescribeContinuousBackups 1 sns:Publish 0.5`},
	{kind: kindService, invoked: "config.amazonaws.com", accounts: []float64{1, 1, 1}, regions: []float64{rUSEast1: 3, rEUWest1: 2, rUSWest2: 1, rAPSouth1: 1},
		perHour: 9, size: [2]int{3, 12}, gap: 0.5, actions: `
		ec2:DescribeInstances 6 ec2:DescribeSecurityGroups 5 ec2:DescribeVolumes 3 ec2:DescribeVpcs 2 ec2:DescribeSubnets 2 ec2:DescribeNetworkInterfaces 2
		s3:GetBucketAcl 3 s3:GetBucketPolicy 3 s3:GetBucketVersioning 2 s3:GetBucketEncryption 2 iam:GetRole 2 iam:ListAttachedRolePolicies 2 config:PutEvaluations 2`},
	{kind: kindLambda, role: "thumbnailer-lambda", session: "thumbnailer", accounts: []float64{1, 0, 0}, regions: []float64{rEUWest1: 1},
		ua:      "Boto3/1.34.145 md/Botocore#1.34.145 ua/2.0 os/linux#5.10.220-229.869.amzn2.x86_64 md/arch#x86_64 lang/python#3.12.4 md/pyimpl#CPython exec-env/AWS_Lambda_python3.12 cfg/retry-mode#legacy Botocore/1.34.145",
		perHour: 14, size: [2]int{2, 3}, gap: 0.8, actions: `s3:GetObject 10 s3:PutObject 8 kms:GenerateDataKey 2 kms:Decrypt 2`},
	{kind: kindScheduled, role: "daily-cost-report", session: "cost-report", accounts: []float64{0, 0, 1}, regions: []float64{rUSEast1: 1}, at: 6.25,
		ua:   "Boto3/1.34.100 md/Botocore#1.34.100 ua/2.0 os/linux#5.10.219-208.866.amzn2.x86_64 md/arch#x86_64 lang/python#3.11.9 md/pyimpl#CPython exec-env/AWS_ECS_FARGATE cfg/retry-mode#legacy Botocore/1.34.100",
		size: [2]int{15, 40}, gap: 3, actions: `ce:GetCostAndUsage 6 ce:GetCostForecast 2 athena:StartQueryExecution 4 athena:GetQueryExecution 10 athena:GetQueryResults 5 glue:GetTable 2 s3:PutObject 2 organizations:ListAccounts 1`},
	// A reporting job that makes a handful of calls a night: too few
	// events for most baselines to say much, which is what makes its
	// stolen credentials hard to spot.
	{kind: kindScheduled, role: quietRole, session: "budget-check", accounts: []float64{1, 0, 0}, regions: []float64{rUSEast1: 1}, at: 6,
		ua:   "Boto3/1.34.84 md/Botocore#1.34.84 ua/2.0 os/linux#5.10.216-225.855.amzn2.x86_64 md/arch#x86_64 lang/python#3.12.3 md/pyimpl#CPython exec-env/AWS_Lambda_python3.12 cfg/retry-mode#legacy Botocore/1.34.84",
		size: [2]int{3, 6}, gap: 1.5, actions: `ce:GetCostAndUsage 4 ce:GetCostForecast 2 s3:PutObject 2 sns:Publish 1`},
	{kind: kindLinked, role: "AWSServiceRoleForAutoScaling", session: "AutoScaling", invoked: "autoscaling.amazonaws.com", accounts: []float64{4, 1, 0}, regions: []float64{rUSEast1: 3, rEUWest1: 1},
		perHour: 3, size: [2]int{2, 8}, gap: 1, actions: `ec2:RunInstances 3 ec2:TerminateInstances 2 ec2:CreateTags 3 ec2:DescribeInstances 4 ec2:DescribeInstanceStatus 2 elasticloadbalancing:DescribeTargetHealth 1`},
	{kind: kindScanner, role: "security-inventory", session: "inventory", accounts: []float64{1, 1, 1}, regions: []float64{rUSEast1: 4, rEUWest1: 3, rUSWest2: 1, rAPSouth1: 1},
		ua:   "Boto3/1.34.120 md/Botocore#1.34.120 ua/2.0 os/linux#5.10.219-208.866.amzn2.x86_64 md/arch#x86_64 lang/python#3.12.3 md/pyimpl#CPython exec-env/AWS_ECS_FARGATE cfg/retry-mode#standard Botocore/1.34.120 prowler/4.2.4",
		size: [2]int{20, 50}, gap: 0.6, actions: `iam:ListUsers 3 iam:ListRoles 3 iam:GetAccountAuthorizationDetails 0.5 iam:ListAccessKeys 3 iam:ListMFADevices 2 iam:GetAccountPasswordPolicy 1
		ec2:DescribeInstances 4 ec2:DescribeSecurityGroups 4 ec2:DescribeVolumes 2 ec2:DescribeSnapshots 2 ec2:DescribeImages 1 s3:ListBuckets 2 s3:GetBucketPolicy 3
		s3:GetBucketAcl 3 s3:GetBucketPublicAccessBlock 3 kms:ListKeys 1 kms:GetKeyRotationStatus 2 cloudtrail:DescribeTrails 1 cloudtrail:GetTrailStatus 1
		guardduty:ListDetectors 1 lambda:ListFunctions20150331 1 rds:DescribeDBInstances 1`},
	{kind: kindCI, role: "codebuild-integration-tests", session: "AWSCodeBuild-4f2c1a9e", accounts: []float64{0, 1, 0}, regions: []float64{rUSEast1: 1},
		ua:      "Boto3/1.34.84 md/Botocore#1.34.84 ua/2.0 os/linux#4.14.345-262.561.amzn2.x86_64 md/arch#x86_64 lang/python#3.12.2 md/pyimpl#CPython exec-env/AWS_ECS_EC2 cfg/retry-mode#legacy Botocore/1.34.84",
		perHour: 9, size: [2]int{10, 40}, gap: 1.5, actions: `s3:GetObject 6 s3:PutObject 4 dynamodb:PutItem 3 dynamodb:GetItem 3 dynamodb:DescribeTable 2 lambda:Invoke 4 logs:CreateLogStream 2 sqs:GetQueueAttributes 2 sts:GetCallerIdentity 1`},
	{kind: kindLambda, role: "log-shipper-lambda", session: "log-shipper", accounts: []float64{0, 0, 1}, regions: []float64{rUSEast1: 1},
		ua:      "Boto3/1.34.145 md/Botocore#1.34.145 ua/2.0 os/linux#5.10.220-229.869.amzn2.x86_64 md/arch#x86_64 lang/python#3.12.4 md/pyimpl#CPython exec-env/AWS_Lambda_python3.12 cfg/retry-mode#legacy Botocore/1.34.145",
		perHour: 10, size: [2]int{2, 5}, gap: 0.5, actions: `s3:GetObject 8 s3:ListObjects 2 kms:Decrypt 2 logs:CreateLogStream 1`},
	{kind: kindScheduled, role: "data-pipeline", session: "nightly-etl", accounts: []float64{1, 0, 0}, regions: []float64{rUSEast1: 1}, at: 3.5,
		ua:   "Boto3/1.34.100 md/Botocore#1.34.100 ua/2.0 os/linux#5.10.219-208.866.amzn2.x86_64 md/arch#x86_64 lang/python#3.11.9 md/pyimpl#CPython exec-env/AWS_ECS_FARGATE cfg/retry-mode#legacy Botocore/1.34.100",
		size: [2]int{40, 90}, gap: 5, actions: `glue:StartJobRun 2 glue:GetJobRun 10 glue:StartCrawler 1 glue:GetCrawler 4 athena:StartQueryExecution 3 athena:GetQueryExecution 8 s3:ListObjects 4 s3:GetObject 2 s3:PutObject 2`},
}

// quietRole is the low-volume scheduled role (attack-quiet-role-abuse).
const quietRole = "budget-notifier"

// Extra functions for Lambda templates when more identities are asked for.
var extraLambdaNames = []string{"payments-webhook", "notifications", "search-indexer", "invoice-renderer", "auth-callback", "inventory-sync", "email-bounce", "pdf-export", "geo-lookup", "fraud-score"}

type weighted struct {
	act *action
	w   float64
}

func parseWeights(s string) []weighted {
	f := strings.Fields(s)
	if len(f)%2 != 0 {
		panic(fmt.Sprintf("synth: odd action list %q", s))
	}
	out := make([]weighted, 0, len(f)/2)
	for i := 0; i < len(f); i += 2 {
		w, err := strconv.ParseFloat(f[i+1], 64)
		if err != nil {
			panic(fmt.Sprintf("synth: weight %q: %v", f[i+1], err))
		}
		out = append(out, weighted{act(f[i]), w})
	}
	return out
}
