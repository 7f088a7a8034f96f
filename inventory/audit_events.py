from audit.registry import register

ACCOUNT_CREATE = register("aws_account.create", "An AWS account was registered")
ACCOUNT_UPDATE = register("aws_account.update", "An AWS account's settings changed")
ACCOUNT_DELETE = register("aws_account.delete", "An AWS account was removed")
ACCOUNT_TEST = register("aws_account.test_connection", "An AWS account's connection was tested")
ACCOUNT_DISCOVER = register(
    "aws_account.discover", "Accounts were discovered from AWS Organizations"
)
SCAN_START = register("scan.start", "A scan started")
SCAN_FINISH = register("scan.finish", "A scan finished")
SCAN_FAIL = register("scan.fail", "A scan failed")
SCHEDULE_CREATE = register("scan_schedule.create", "A scan schedule was created")
SCHEDULE_UPDATE = register("scan_schedule.update", "A scan schedule changed")
SCHEDULE_DELETE = register("scan_schedule.delete", "A scan schedule was removed")
ACCOUNT_TEAM_GRANT = register("aws_account.team_grant", "A team was given an AWS account")
ACCOUNT_TEAM_REVOKE = register("aws_account.team_revoke", "A team no longer holds an AWS account")
COST_IMPORT = register("cost.import", "Resource costs were imported")
