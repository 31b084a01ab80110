"""A minimal Django project for ``django_logging.py``: its settings and its URLs."""
