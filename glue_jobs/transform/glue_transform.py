"""AWS Glue job 2 of 3: recompute the daily KPIs and rankings of the days validated.

Reads every valid row of each pending day (Spark), writes `processed/<table>/date=…/`
and hands the days to the load job. See docs/deploy-glue.md.

    glue_transform.py --LAKE_ROOT s3://bucket/music
"""

import sys

from music_etl.integrations.glue import main_transform

if __name__ == "__main__":
    sys.exit(main_transform(sys.argv))
