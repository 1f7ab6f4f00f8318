"""AWS Glue job 3 of 3: replace the recomputed days in the serving store (DynamoDB).

Needs no Spark: run it as a Glue Python shell job. See docs/deploy-glue.md.

    load_dynamo.py --LAKE_ROOT s3://bucket/music [--SERVING dynamodb://?region=eu-west-1]
"""

import sys

from music_etl.integrations.glue import main_load

if __name__ == "__main__":
    sys.exit(main_load(sys.argv))
