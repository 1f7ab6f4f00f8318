"""The Spark engine: the same contract on AWS Glue 5.0, EMR or any Spark 3.5 cluster.

`pyspark` is imported only inside this package (install the `spark` extra), so the
embedded mode never pays for it.
"""
