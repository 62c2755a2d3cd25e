package synth

import (
	"fmt"
	"regexp"
	"strings"
)

// service is an AWS service as CloudTrail names it.
type service struct {
	key    string // short name used in the tables (ec2, s3, ...)
	source string // eventSource
	global bool   // logged in us-east-1 whatever the caller's region
	errs   []errorSpec
}

// errorSpec is one failure a service plausibly returns.
type errorSpec struct {
	code, msg string
	writeOnly bool // only for calls that change something (denied writes)
}

// action is one API call of the catalog.
type action struct {
	svc      *service
	name     string
	readOnly bool
	data     bool   // a data event (S3 objects, DynamoDB items, Lambda Invoke)
	params   []frag // requestParameters template, nil for null
	cliName  string // the aws-cli command, e.g. ec2.describe-instances
	console  bool   // ConsoleLogin (an AwsConsoleSignIn event)
	key      string // svc:Name
	eventTyp string
}

var accessDenied = errorSpec{code: "AccessDenied", msg: "User: $arn is not authorized to perform this action because no identity-based policy allows it"}
var throttling = errorSpec{code: "ThrottlingException", msg: "Rate exceeded"}

// services lists what the organisation calls. Error tables hold the
// codes CloudTrail really records for each service.
var services = map[string]*service{}

func init() {
	for _, s := range []*service{
		{key: "ec2", errs: []errorSpec{{code: "Client.UnauthorizedOperation", msg: "You are not authorized to perform this operation.", writeOnly: true}, {code: "Client.RequestLimitExceeded", msg: "Request limit exceeded."}, {code: "Client.InvalidInstanceID.NotFound", msg: "The instance ID '$instance' does not exist"}}},
		{key: "s3", errs: []errorSpec{{code: "AccessDenied", msg: "Access Denied"}, {code: "NoSuchBucketPolicy", msg: "The bucket policy does not exist"}, {code: "NoSuchKey", msg: "The specified key does not exist."}}},
		{key: "iam", global: true, errs: []errorSpec{{code: "NoSuchEntityException", msg: "The role with name $role cannot be found."}, accessDenied, {code: "Throttling", msg: "Rate exceeded"}}},
		{key: "sts", global: true, errs: []errorSpec{accessDenied}},
		{key: "signin", global: true},
		{key: "lambda", errs: []errorSpec{{code: "ResourceNotFoundException", msg: "Function not found: arn:aws:lambda:$region:$acct:function:$function"}, {code: "TooManyRequestsException", msg: "Rate exceeded"}, accessDenied}},
		{key: "monitoring", errs: []errorSpec{throttling, accessDenied}},
		{key: "logs", errs: []errorSpec{{code: "ResourceNotFoundException", msg: "The specified log group does not exist."}, throttling}},
		{key: "rds", errs: []errorSpec{{code: "DBInstanceNotFound", msg: "DBInstance $db not found."}, accessDenied}},
		{key: "dynamodb", errs: []errorSpec{{code: "ResourceNotFoundException", msg: "Requested resource not found"}, {code: "ProvisionedThroughputExceededException", msg: "The level of configured provisioned throughput for the table was exceeded."}}},
		{key: "ssm", errs: []errorSpec{{code: "ParameterNotFound", msg: ""}, throttling, accessDenied}},
		{key: "kms", errs: []errorSpec{accessDenied, throttling}},
		{key: "ecr", errs: []errorSpec{{code: "RepositoryNotFoundException", msg: "The repository with name '$repo' does not exist in the registry with id '$acct'"}, accessDenied}},
		{key: "ecs", errs: []errorSpec{{code: "ClusterNotFoundException", msg: "Cluster not found."}, accessDenied}},
		{key: "glue", errs: []errorSpec{{code: "EntityNotFoundException", msg: "Table $table not found."}, accessDenied}},
		{key: "athena", errs: []errorSpec{{code: "InvalidRequestException", msg: "Query has not yet finished. Current state: RUNNING"}, accessDenied}},
		{key: "secretsmanager", errs: []errorSpec{{code: "ResourceNotFoundException", msg: "Secrets Manager can't find the specified secret."}, accessDenied}},
		{key: "cloudtrail", errs: []errorSpec{accessDenied}},
		{key: "config", errs: []errorSpec{accessDenied}},
		{key: "guardduty", errs: []errorSpec{accessDenied}},
		{key: "securityhub", errs: []errorSpec{accessDenied}},
		{key: "access-analyzer", errs: []errorSpec{accessDenied}},
		{key: "organizations", global: true, errs: []errorSpec{{code: "AccessDeniedException", msg: "You don't have permissions to access this resource."}}},
		{key: "elasticloadbalancing", errs: []errorSpec{throttling}},
		{key: "autoscaling", errs: []errorSpec{throttling}},
		{key: "sqs", errs: []errorSpec{{code: "AWS.SimpleQueueService.NonExistentQueue", msg: "The specified queue does not exist."}}},
		{key: "ce", global: true, errs: []errorSpec{{code: "LimitExceededException", msg: "Rate exceeded"}}},
		{key: "health", global: true},
		{key: "cloudformation", errs: []errorSpec{{code: "ValidationError", msg: "Stack with id $function does not exist"}}},
		{key: "route53", global: true, errs: []errorSpec{throttling}},
		{key: "states", errs: []errorSpec{{code: "ExecutionDoesNotExist", msg: "Execution Does Not Exist"}}},
		{key: "bedrock", errs: []errorSpec{{code: "ValidationException", msg: "The provided model identifier is invalid."}, accessDenied}},
		{key: "eks", errs: []errorSpec{{code: "ResourceNotFoundException", msg: "No cluster found for name: $cluster."}}},
		{key: "sns", errs: []errorSpec{{code: "NotFound", msg: "Topic does not exist"}}},
	} {
		s.source = s.key + ".amazonaws.com"
		services[s.key] = s
	}
}

// catalogText declares every action the synthetic organisation uses:
// "service Name mode [requestParameters]" where mode is r (read), w
// (write), d (data read), D (data write) and the template's $names are
// filled from the account's resources.
const catalogText = `
ec2 DescribeInstances r {"instancesSet":{},"filterSet":{}}
ec2 DescribeInstanceStatus r {"instancesSet":{},"filterSet":{},"includeAllInstances":false}
ec2 DescribeSecurityGroups r {"securityGroupSet":{},"securityGroupIdSet":{},"filterSet":{}}
ec2 DescribeVpcs r {"vpcSet":{},"filterSet":{}}
ec2 DescribeSubnets r {"subnetSet":{},"filterSet":{}}
ec2 DescribeVolumes r {"volumeSet":{},"filterSet":{}}
ec2 DescribeSnapshots r {"snapshotSet":{},"ownersSet":{"items":[{"owner":"self"}]},"sharedUsersSet":{},"filterSet":{}}
ec2 DescribeImages r {"executableBySet":{},"imagesSet":{},"ownersSet":{"items":[{"owner":"self"}]},"filterSet":{}}
ec2 DescribeRouteTables r {"routeTableIdSet":{},"filterSet":{}}
ec2 DescribeNetworkInterfaces r {"networkInterfaceIdSet":{},"filterSet":{}}
ec2 DescribeAddresses r {"publicIpsSet":{},"allocationIdsSet":{},"filterSet":{}}
ec2 DescribeLaunchTemplates r {"DescribeLaunchTemplatesRequest":""}
ec2 DescribeKeyPairs r {"keySet":{}}
ec2 ImportKeyPair w {"keyName":"k$hex7","publicKeyMaterial":"<sensitiveDataRemoved>"}
ec2 DescribeAvailabilityZones r {"availabilityZoneSet":{},"availabilityZoneIdSet":{}}
ec2 DescribeRegions r {"regionSet":{}}
ec2 DescribeInstanceTypes r {"instanceTypeSet":{}}
ec2 DescribeInstanceTypeOfferings r {"locationType":"availability-zone"}
ec2 DescribeTags r {"filterSet":{"items":[{"name":"resource-id","valueSet":{"items":[{"value":"$instance"}]}}]}}
ec2 RunInstances w {"instancesSet":{"items":[{"imageId":"$ami","minCount":1,"maxCount":1}]},"instanceType":"$itype","blockDeviceMapping":{},"monitoring":{"enabled":false},"disableApiTermination":false,"disableApiStop":false}
ec2 StartInstances w {"instancesSet":{"items":[{"instanceId":"$instance"}]}}
ec2 StopInstances w {"instancesSet":{"items":[{"instanceId":"$instance"}]},"force":false}
ec2 RebootInstances w {"instancesSet":{"items":[{"instanceId":"$instance"}]}}
ec2 TerminateInstances w {"instancesSet":{"items":[{"instanceId":"$instance"}]}}
ec2 CreateTags w {"resourcesSet":{"items":[{"resourceId":"$instance"}]},"tagSet":{"items":[{"key":"Owner","value":"$team"}]}}
ec2 CreateSnapshot w {"volumeId":"$volume","description":"nightly backup"}
ec2 DeleteSnapshot w {"snapshotId":"$snapshot"}
ec2 AuthorizeSecurityGroupIngress w {"groupId":"$sg","ipPermissions":{"items":[{"ipProtocol":"tcp","fromPort":443,"toPort":443,"groups":{},"ipRanges":{"items":[{"cidrIp":"10.0.0.0/8"}]},"ipv6Ranges":{},"prefixListIds":{}}]}}
ec2 ModifyInstanceAttribute w {"instanceId":"$instance","instanceType":{"value":"$itype"}}
ec2 CreateLaunchTemplateVersion w {"CreateLaunchTemplateVersionRequest":{"LaunchTemplateId":"lt-0$hex17"}}
s3 ListBuckets r {"Host":"s3.amazonaws.com"}
s3 GetBucketLocation r {"bucketName":"$bucket","Host":"$bucket.s3.amazonaws.com","location":""}
s3 GetBucketPolicy r {"bucketName":"$bucket","Host":"$bucket.s3.amazonaws.com","policy":""}
s3 GetBucketAcl r {"bucketName":"$bucket","Host":"$bucket.s3.amazonaws.com","acl":""}
s3 GetBucketVersioning r {"bucketName":"$bucket","Host":"$bucket.s3.amazonaws.com","versioning":""}
s3 GetBucketEncryption r {"bucketName":"$bucket","Host":"$bucket.s3.amazonaws.com","encryption":""}
s3 GetBucketPublicAccessBlock r {"bucketName":"$bucket","Host":"$bucket.s3.amazonaws.com","publicAccessBlock":""}
s3 GetBucketTagging r {"bucketName":"$bucket","Host":"$bucket.s3.amazonaws.com","tagging":""}
s3 PutBucketPolicy w {"bucketName":"$bucket","Host":"$bucket.s3.amazonaws.com","policy":""}
s3 PutBucketAcl w {"bucketName":"$bucket","Host":"$bucket.s3.amazonaws.com","acl":""}
s3 PutBucketTagging w {"bucketName":"$bucket","Host":"$bucket.s3.amazonaws.com","tagging":""}
s3 CreateBucket w {"bucketName":"$bucket-$hex4","Host":"$bucket-$hex4.s3.amazonaws.com"}
s3 ListObjects d {"bucketName":"$bucket","Host":"$bucket.s3.$region.amazonaws.com","prefix":"$prefix/","list-type":"2"}
s3 GetObject d {"bucketName":"$bucket","Host":"$bucket.s3.$region.amazonaws.com","key":"$prefix/$object"}
s3 PutObject D {"bucketName":"$bucket","Host":"$bucket.s3.$region.amazonaws.com","key":"$prefix/$object"}
s3 DeleteObject D {"bucketName":"$bucket","Host":"$bucket.s3.$region.amazonaws.com","key":"$prefix/$object"}
s3 HeadObject d {"bucketName":"$bucket","Host":"$bucket.s3.$region.amazonaws.com","key":"$prefix/$object"}
iam ListUsers r {}
iam ListRoles r {}
iam ListPolicies r {"scope":"Local","onlyAttached":false}
iam ListGroups r {}
iam GetRole r {"roleName":"$role"}
iam GetUser r {"userName":"$user"}
iam GetPolicy r {"policyArn":"arn:aws:iam::$acct:policy/$role-policy"}
iam GetPolicyVersion r {"policyArn":"arn:aws:iam::$acct:policy/$role-policy","versionId":"v3"}
iam ListAttachedRolePolicies r {"roleName":"$role"}
iam ListRolePolicies r {"roleName":"$role"}
iam ListAttachedUserPolicies r {"userName":"$user"}
iam ListAccessKeys r {"userName":"$user"}
iam ListMFADevices r {"userName":"$user"}
iam GetAccountSummary r
iam GetAccountPasswordPolicy r
iam GetAccountAuthorizationDetails r {"filter":["User","Role","Group","LocalManagedPolicy","AWSManagedPolicy"]}
iam GenerateCredentialReport r
iam GetCredentialReport r
iam ListInstanceProfiles r {}
iam CreateRole w {"roleName":"$role-$hex4","assumeRolePolicyDocument":"{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{\"Service\":\"lambda.amazonaws.com\"},\"Action\":\"sts:AssumeRole\"}]}"}
iam AttachRolePolicy w {"roleName":"$role","policyArn":"arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"}
iam PutRolePolicy w {"roleName":"$role","policyName":"inline-access"}
iam CreatePolicyVersion w {"policyArn":"arn:aws:iam::$acct:policy/$role-policy","setAsDefault":true}
iam TagRole w {"roleName":"$role","tags":[{"key":"team","value":"$team"}]}
iam CreateAccessKey w {"userName":"$user"}
iam UpdateAccessKey w {"userName":"$user","accessKeyId":"AKIA$key16","status":"Inactive"}
iam DeleteAccessKey w {"userName":"$user","accessKeyId":"AKIA$key16"}
iam ListSSHPublicKeys r {"userName":"$user"}
sts GetCallerIdentity r
sts AssumeRole r {"roleArn":"arn:aws:iam::$acct:role/$role","roleSessionName":"$session","durationSeconds":3600}
sts GetSessionToken r {"durationSeconds":43200}
signin ConsoleLogin c
lambda ListFunctions20150331 r
lambda GetFunction20150331v2 r {"functionName":"$function"}
lambda GetFunctionConfiguration20150331v2 r {"functionName":"$function"}
lambda ListVersionsByFunction20150331 r {"functionName":"$function"}
lambda ListEventSourceMappings20150331 r {"functionName":"$function"}
lambda GetPolicy20150331v2 r {"functionName":"$function"}
lambda UpdateFunctionCode20150331v2 w {"functionName":"$function","publish":true,"dryRun":false}
lambda UpdateFunctionConfiguration20150331v2 w {"functionName":"$function","timeout":30}
lambda PublishVersion20150331 w {"functionName":"$function"}
lambda UpdateAlias20150331 w {"functionName":"$function","name":"live"}
lambda CreateFunction20150331 w {"functionName":"$function-$hex4","runtime":"python3.12","handler":"app.handler","publish":true}
lambda Invoke D {"functionName":"arn:aws:lambda:$region:$acct:function:$function"}
monitoring DescribeAlarms r {"maxRecords":100}
monitoring GetMetricData r {"startTime":"$ago","endTime":"$now","maxDatapoints":1440}
monitoring GetMetricStatistics r {"namespace":"AWS/EC2","metricName":"CPUUtilization","startTime":"$ago","endTime":"$now","period":300,"statistics":["Average"]}
monitoring ListMetrics r {"namespace":"AWS/Lambda"}
monitoring PutMetricAlarm w {"alarmName":"$function-errors","namespace":"AWS/Lambda","metricName":"Errors","threshold":1.0}
monitoring DescribeAlarmHistory r {"alarmName":"$function-errors","maxRecords":50}
logs DescribeLogGroups r {"limit":50}
logs DescribeLogStreams r {"logGroupName":"$loggroup","orderBy":"LastEventTime","descending":true,"limit":50}
logs FilterLogEvents r {"logGroupName":"$loggroup","startTime":1,"interleaved":true}
logs GetLogEvents r {"logGroupName":"$loggroup","logStreamName":"2024/01/01/[\u0024LATEST]$hex17","startFromHead":false}
logs StartQuery r {"logGroupNames":["$loggroup"],"queryString":"fields @timestamp, @message | filter @message like /ERROR/ | sort @timestamp desc | limit 100"}
logs GetQueryResults r {"queryId":"$uuid"}
logs CreateLogStream w {"logGroupName":"$loggroup","logStreamName":"$hex17"}
logs PutRetentionPolicy w {"logGroupName":"$loggroup","retentionInDays":30}
rds DescribeDBInstances r {}
rds DescribeDBClusters r {}
rds DescribeDBSnapshots r {"dBInstanceIdentifier":"$db","snapshotType":"manual"}
rds DescribeDBParameterGroups r {}
rds DescribeEvents r {"duration":60}
rds CreateDBSnapshot w {"dBSnapshotIdentifier":"$db-nightly-$hex4","dBInstanceIdentifier":"$db"}
rds DeleteDBSnapshot w {"dBSnapshotIdentifier":"$db-nightly-$hex4"}
rds RebootDBInstance w {"dBInstanceIdentifier":"$db","forceFailover":false}
rds ModifyDBInstance w {"dBInstanceIdentifier":"$db","applyImmediately":false}
dynamodb ListTables r {}
dynamodb DescribeTable r {"tableName":"$table"}
dynamodb DescribeContinuousBackups r {"tableName":"$table"}
dynamodb DescribeTimeToLive r {"tableName":"$table"}
dynamodb UpdateTable w {"tableName":"$table","billingMode":"PAY_PER_REQUEST"}
dynamodb GetItem d {"tableName":"$table","key":{"pk":"HIDDEN_DUE_TO_SECURITY_REASONS"}}
dynamodb Query d {"tableName":"$table","keyConditionExpression":"pk = :pk","limit":50}
dynamodb PutItem D {"tableName":"$table","key":{"pk":"HIDDEN_DUE_TO_SECURITY_REASONS"}}
dynamodb UpdateItem D {"tableName":"$table","key":{"pk":"HIDDEN_DUE_TO_SECURITY_REASONS"}}
ssm DescribeInstanceInformation r {}
ssm GetParameter r {"name":"/$team/$param","withDecryption":true}
ssm GetParameters r {"names":["/$team/$param"],"withDecryption":true}
ssm GetParametersByPath r {"path":"/$team/","recursive":true,"withDecryption":true}
ssm DescribeParameters r {}
ssm PutParameter w {"name":"/$team/$param","type":"SecureString","overwrite":true}
ssm StartSession w {"target":"$instance"}
ssm TerminateSession w {"sessionId":"$session-$hex17"}
ssm SendCommand w {"documentName":"AWS-RunShellScript","instanceIds":["$instance"],"interactive":false}
ssm GetCommandInvocation r {"commandId":"$uuid","instanceId":"$instance"}
ssm ListCommandInvocations r {"commandId":"$uuid","details":true}
kms Decrypt r {"encryptionAlgorithm":"SYMMETRIC_DEFAULT","encryptionContext":{"aws:lambda:FunctionArn":"arn:aws:lambda:$region:$acct:function:$function"}}
kms GenerateDataKey r {"keyId":"arn:aws:kms:$region:$acct:key/$uuid","keySpec":"AES_256"}
kms Encrypt r {"keyId":"alias/$team","encryptionAlgorithm":"SYMMETRIC_DEFAULT"}
kms ListKeys r {}
kms ListAliases r {}
kms DescribeKey r {"keyId":"alias/$team"}
kms GetKeyPolicy r {"keyId":"$uuid","policyName":"default"}
kms GetKeyRotationStatus r {"keyId":"$uuid"}
kms CreateGrant w {"keyId":"$uuid","operations":["Decrypt"]}
ecr GetAuthorizationToken r {}
ecr DescribeRepositories r {}
ecr DescribeImages r {"repositoryName":"$repo","maxResults":100}
ecr ListImages r {"repositoryName":"$repo"}
ecr BatchGetImage r {"repositoryName":"$repo","imageIds":[{"imageTag":"latest"}]}
ecr BatchCheckLayerAvailability r {"repositoryName":"$repo","layerDigests":["sha256:$hex64"]}
ecr InitiateLayerUpload w {"repositoryName":"$repo"}
ecr UploadLayerPart w {"repositoryName":"$repo","uploadId":"$uuid","partFirstByte":0,"partLastByte":5242879}
ecr CompleteLayerUpload w {"repositoryName":"$repo","uploadId":"$uuid","layerDigests":["sha256:$hex64"]}
ecr PutImage w {"repositoryName":"$repo","imageTag":"$hex7"}
ecr DescribeImageScanFindings r {"repositoryName":"$repo","imageId":{"imageTag":"$hex7"}}
ecs ListClusters r {}
ecs DescribeClusters r {"clusters":["$cluster"]}
ecs ListServices r {"cluster":"$cluster"}
ecs DescribeServices r {"cluster":"$cluster","services":["$function"]}
ecs ListTasks r {"cluster":"$cluster","serviceName":"$function"}
ecs DescribeTasks r {"cluster":"$cluster","tasks":["$hex32"]}
ecs DescribeTaskDefinition r {"taskDefinition":"$function"}
ecs RegisterTaskDefinition w {"family":"$function","networkMode":"awsvpc","requiresCompatibilities":["FARGATE"]}
ecs UpdateService w {"cluster":"$cluster","service":"$function","forceNewDeployment":true}
glue GetDatabases r {}
glue GetTables r {"databaseName":"$team"}
glue GetTable r {"databaseName":"$team","name":"$table"}
glue GetPartitions r {"databaseName":"$team","tableName":"$table"}
glue GetJobs r {}
glue GetJobRun r {"jobName":"$table-etl","runId":"jr_$hex64"}
glue GetJobRuns r {"jobName":"$table-etl"}
glue StartJobRun w {"jobName":"$table-etl"}
glue GetCrawler r {"name":"$table-crawler"}
glue StartCrawler w {"name":"$table-crawler"}
glue UpdateTable w {"databaseName":"$team","tableInput":{"name":"$table"}}
glue CreateTable w {"databaseName":"$team","tableInput":{"name":"$table_v2"}}
athena StartQueryExecution w {"queryString":"SELECT * FROM $table LIMIT 100","queryExecutionContext":{"database":"$team"},"workGroup":"primary"}
athena GetQueryExecution r {"queryExecutionId":"$uuid"}
athena GetQueryResults r {"queryExecutionId":"$uuid","maxResults":1000}
athena ListWorkGroups r {}
athena GetWorkGroup r {"workGroup":"primary"}
athena ListDataCatalogs r {}
athena ListQueryExecutions r {"workGroup":"primary"}
secretsmanager ListSecrets r {}
secretsmanager DescribeSecret r {"secretId":"$secret"}
secretsmanager GetSecretValue r {"secretId":"$secret"}
secretsmanager PutSecretValue w {"secretId":"$secret"}
secretsmanager RotateSecret w {"secretId":"$secret"}
cloudtrail StopLogging w {"name":"arn:aws:cloudtrail:us-east-1:$acct:trail/org-trail"}
cloudtrail DeleteTrail w {"name":"$team-regional-trail"}
cloudtrail DescribeTrails r {"trailNameList":[],"includeShadowTrails":true}
cloudtrail GetTrailStatus r {"name":"org-trail"}
cloudtrail GetEventSelectors r {"trailName":"org-trail"}
cloudtrail LookupEvents r {"maxResults":50}
config DescribeConfigRules r {}
config DescribeConfigurationRecorders r {}
config DescribeComplianceByConfigRule r {}
config GetComplianceDetailsByConfigRule r {"configRuleName":"s3-bucket-public-read-prohibited","limit":100}
config PutEvaluations w {"resultToken":"$uuid","testMode":false}
config BatchGetResourceConfig r {}
guardduty ListDetectors r {}
guardduty GetDetector r {"detectorId":"$hex32"}
guardduty ListFindings r {"detectorId":"$hex32","maxResults":50}
guardduty GetFindings r {"detectorId":"$hex32","findingIds":["$hex32"]}
securityhub GetFindings r {"maxResults":100}
securityhub DescribeHub r {}
securityhub BatchUpdateFindings w {"findingIdentifiers":[{"id":"$uuid"}],"workflow":{"status":"RESOLVED"}}
access-analyzer ListAnalyzers r {}
access-analyzer ListFindings r {"analyzerArn":"arn:aws:access-analyzer:$region:$acct:analyzer/org"}
organizations DescribeOrganization r
organizations ListAccounts r {}
organizations ListPoliciesForTarget r {"targetId":"$acct","filter":"SERVICE_CONTROL_POLICY"}
elasticloadbalancing DescribeLoadBalancers r {}
elasticloadbalancing DescribeTargetGroups r {}
elasticloadbalancing DescribeTargetHealth r {"targetGroupArn":"arn:aws:elasticloadbalancing:$region:$acct:targetgroup/$function/$hex16"}
autoscaling DescribeAutoScalingGroups r {}
autoscaling DescribeScalingActivities r {"autoScalingGroupName":"$cluster-asg"}
autoscaling SetDesiredCapacity w {"autoScalingGroupName":"$cluster-asg","desiredCapacity":6,"honorCooldown":false}
autoscaling UpdateAutoScalingGroup w {"autoScalingGroupName":"$cluster-asg","maxSize":12}
sqs ListQueues r {}
sqs GetQueueAttributes r {"queueUrl":"https://sqs.$region.amazonaws.com/$acct/$function-queue","attributeNames":["All"]}
sqs PurgeQueue w {"queueUrl":"https://sqs.$region.amazonaws.com/$acct/$function-dlq"}
ce GetCostAndUsage r {"timePeriod":{"start":"2024-01-01","end":"2024-02-01"},"granularity":"DAILY","metrics":["UnblendedCost"]}
ce GetCostForecast r {"metric":"UNBLENDED_COST","granularity":"MONTHLY"}
health DescribeEventAggregates r {"aggregateField":"eventTypeCategory"}
cloudformation DescribeStacks r {}
cloudformation ListStacks r {}
cloudformation DescribeStackEvents r {"stackName":"$function"}
cloudformation GetTemplate r {"stackName":"$function"}
route53 ListHostedZones r {}
route53 ListResourceRecordSets r {"hostedZoneId":"Z$key16"}
route53 ChangeResourceRecordSets w {"hostedZoneId":"Z$key16"}
states ListStateMachines r {}
states DescribeStateMachine r {"stateMachineArn":"arn:aws:states:$region:$acct:stateMachine:$table-pipeline"}
states CreateStateMachine w {"name":"$table-pipeline","type":"STANDARD"}
states UpdateStateMachine w {"stateMachineArn":"arn:aws:states:$region:$acct:stateMachine:$table-pipeline"}
states StartExecution w {"stateMachineArn":"arn:aws:states:$region:$acct:stateMachine:$table-pipeline","name":"$uuid"}
states DescribeExecution r {"executionArn":"arn:aws:states:$region:$acct:execution:$table-pipeline:$uuid"}
states ListExecutions r {"stateMachineArn":"arn:aws:states:$region:$acct:stateMachine:$table-pipeline","maxResults":100}
states GetExecutionHistory r {"executionArn":"arn:aws:states:$region:$acct:execution:$table-pipeline:$uuid"}
bedrock ListFoundationModels r {}
bedrock GetFoundationModel r {"modelIdentifier":"anthropic.claude-3-haiku-20240307-v1:0"}
bedrock InvokeModel r {"modelId":"anthropic.claude-3-haiku-20240307-v1:0"}
eks ListClusters r {}
eks DescribeCluster r {"name":"$cluster"}
sns ListTopics r {}
sns Publish w {"topicArn":"arn:aws:sns:$region:$acct:$team-alerts","subject":"backup report"}
`

var catalog = map[string]*action{}

func init() {
	for i, line := range strings.Split(catalogText, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		parts := strings.SplitN(line, " ", 4)
		if len(parts) < 3 {
			panic(fmt.Sprintf("synth catalog line %d: %q", i, line))
		}
		svc := services[parts[0]]
		if svc == nil {
			panic(fmt.Sprintf("synth catalog line %d: unknown service %q", i, parts[0]))
		}
		a := &action{svc: svc, name: parts[1], key: parts[0] + ":" + parts[1], eventTyp: "AwsApiCall"}
		switch parts[2] {
		case "r":
			a.readOnly = true
		case "w":
		case "d":
			a.readOnly, a.data = true, true
		case "D":
			a.data = true
		case "c":
			a.console, a.eventTyp = true, "AwsConsoleSignIn"
		default:
			panic(fmt.Sprintf("synth catalog line %d: mode %q", i, parts[2]))
		}
		if len(parts) == 4 {
			a.params = parseTemplate(parts[3])
		}
		a.cliName = cliServiceName(parts[0]) + "." + kebab(parts[1])
		catalog[a.key] = a
	}
}

// act returns a catalog action by key; tables refer to actions by key,
// and a typo there is a programming error.
func act(key string) *action {
	a := catalog[key]
	if a == nil {
		panic("synth: unknown action " + key)
	}
	return a
}

// cliServiceName is the aws-cli namespace of a service key.
func cliServiceName(svc string) string {
	switch svc {
	case "monitoring":
		return "cloudwatch"
	case "elasticloadbalancing":
		return "elbv2"
	case "states":
		return "stepfunctions"
	case "s3":
		return "s3api"
	case "access-analyzer":
		return "accessanalyzer"
	}
	return svc
}

// kebab turns an API name into the aws-cli command (DescribeInstances →
// describe-instances); Lambda's dated names (ListFunctions20150331,
// GetFunction20150331v2) lose their date suffix.
func kebab(name string) string {
	if m := lambdaDate.FindStringIndex(name); m != nil {
		name = name[:m[0]]
	}
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 'A' && c <= 'Z' {
			if i > 0 && !(name[i-1] >= 'A' && name[i-1] <= 'Z') {
				b.WriteByte('-')
			}
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	return b.String()
}

var lambdaDate = regexp.MustCompile(`[0-9]{8}(v[0-9]+)?$`)

// frag is a piece of a template: literal text, or a $variable.
type frag struct {
	lit string
	v   string
}

func parseTemplate(s string) []frag {
	var out []frag
	for len(s) > 0 {
		i := strings.IndexByte(s, '$')
		if i < 0 {
			out = append(out, frag{lit: s})
			break
		}
		if i > 0 {
			out = append(out, frag{lit: s[:i]})
		}
		j := i + 1
		for j < len(s) && (s[j] >= 'a' && s[j] <= 'z' || s[j] >= '0' && s[j] <= '9') {
			j++
		}
		out = append(out, frag{v: s[i+1 : j]})
		s = s[j:]
	}
	return out
}
