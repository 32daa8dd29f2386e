"""krxflow: keep the whole Korean stock market (KOSPI/KOSDAQ) in a PostgreSQL database of your own.

An installable Airflow provider (``pip install krxflow``): Airflow discovers its hooks, the ``kis``
connection type, triggers and sensors (:mod:`krxflow.provider_info`) and loads its plugin
(:mod:`krxflow.plugin`) from the package's entry points, so DAGs, the triggerer, the workers and the
api-server all import the same installed code. Heavy dependencies (pykrx, pandas, pyarrow) are imported
by the modules that need them, never here: DAG files import this package while parsing.
"""

__version__ = "0.1.0"
