"""Create the `ProcessedStreams` ledger table (on-demand) if it is missing; wait until active.

A thin wrapper kept for the seed's users: `music-etl aws init` creates every table of the
AWS mode with the same library function.

Usage:
    python scripts/create_processedstreams_table.py --region eu-west-1 [--prefix dev-]
        [--endpoint http://localhost:4566]
"""

from __future__ import annotations

import argparse
import sys

from music_etl.adapters.aws.session import DynamoDBTarget
from music_etl.adapters.aws.tables import LEDGER_TABLES, create_tables
from music_etl.errors import MusicEtlError


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, create the table, say what happened."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--region", default="", help="AWS region (default: boto3's).")
    parser.add_argument("--prefix", default="", help="Table name prefix, e.g. dev-.")
    parser.add_argument("--endpoint", default="", help="Endpoint override (moto, LocalStack).")
    args = parser.parse_args(argv)
    target = DynamoDBTarget(region=args.region, endpoint=args.endpoint, prefix=args.prefix)
    try:
        created = create_tables(target, LEDGER_TABLES)
    except MusicEtlError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    name = target.table(LEDGER_TABLES[0].name)
    print(f"{name}: {'created' if created else 'exists'}, active")
    return 0


if __name__ == "__main__":
    sys.exit(main())
