"""The CI check: parse a Terraform plan or a CloudFormation template into planned resources,
report violations as JSON and JUnit XML. Pure Python, no Django: the command-line client
(cli.py) must run in CI images that only have the standard library and requests."""
