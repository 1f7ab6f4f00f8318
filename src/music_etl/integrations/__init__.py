"""Entry points for the platforms that run the package: AWS Glue jobs (`glue`)."""
