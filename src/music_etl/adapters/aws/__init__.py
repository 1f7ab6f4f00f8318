"""What the AWS backends share: the boto3 client factory, table definitions, error mapping.

boto3 is imported only inside these modules and the S3 and DynamoDB backends, so the
embedded mode never loads it.
"""
