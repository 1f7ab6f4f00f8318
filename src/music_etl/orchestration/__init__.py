"""What the orchestrators call: plain functions, importable without Airflow or AWS.

`config` reads `configs/job_configs.json`; `airflow` holds the tasks and the failure
callback of `dags/stream_metrics_pipeline.py`.
"""
