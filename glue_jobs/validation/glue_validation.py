"""AWS Glue job 1 of 3: validate new stream files into the lake.

Refreshes the validated users and songs, then claims, validates (Spark), writes the
valid rows per day and the bad records, marks each file done and archives it. The days
it touched are handed to the transform job. See docs/deploy-glue.md.

    glue_validation.py --LAKE_ROOT s3://bucket/music [--RAW_KEY raw/streams/x.csv]
"""

import sys

from music_etl.integrations.glue import main_validation

if __name__ == "__main__":
    sys.exit(main_validation(sys.argv))
