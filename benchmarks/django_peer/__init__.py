"""django-celery-beat 2.9 (Django 5.2) as a third column of the benchmark suite (issue 20).

The most used alternative to RedBeat keeps its schedule in a relational database. This package
measures its ``DatabaseScheduler`` the way ``benchmarks/run.py`` measures RedBeat and
celery-redbeat (B1 tick cost, B2 start-up, B3 burst, B5 memory), plus B6 as two real beats on
one database, on SQLite and on PostgreSQL, and writes ``benchmarks/results-django.json``, which
``benchmarks/report.py`` renders as its own section of ``RESULTS.md``.

* ``runner`` (``python -m benchmarks.django_peer``): builds django-celery-beat's venv with uv,
  starts the databases (a SQLite file; a PostgreSQL cluster of its own from Debian's
  binaries, on 127.0.0.1), runs every measurement in a subprocess and, with ``--with-ours``,
  RedBeat's (and with ``--with-theirs`` celery-redbeat's) through ``benchmarks/worker.py``
  in the same run, so the ratios are same-run;
* ``djworker`` (run by the django venv's interpreter): one measurement per process;
* ``dj_beat_app``: the Celery app of the real ``celery beat`` processes of B6;
* ``djsettings``: the Django settings both use;
* ``postgres``: a throwaway PostgreSQL cluster;
* ``report``: the RESULTS.md section.
"""
