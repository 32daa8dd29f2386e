"""krxflow: keep the whole Korean stock market (KOSPI/KOSDAQ) in a PostgreSQL database of your own.

The package lives in the Airflow ``plugins/`` folder so that DAGs, the triggerer and the
api-server all import the same code. Heavy dependencies (pykrx, pandas, pyarrow) are imported
by the modules that need them, never here: DAG files import this package while parsing.
"""

__version__ = "0.1.0"
