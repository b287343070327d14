"""``python -m benchmarks.django_peer``: see :mod:`benchmarks.django_peer.runner`."""

from benchmarks.django_peer.runner import main

raise SystemExit(main())
