"""The application layer: every use case of the product, as plain async functions over a unit
of work (``application.ports.UnitOfWork``) whose commit also writes the outbox.

Entrypoints (the customer API and its UI, the ``zuora-sync`` CLI) parse their input, open a unit
of work, call a use case and map its result and its domain errors (``application.errors``) to
their own terms: HTTP answers RFC 9457 problems, the CLI one line on stderr and an exit code.
None of them keeps SQL or rules of its own.

Modules: ``customers`` (add / update / remove / check credentials / read), ``sync`` (sync
requests and replay), ``runs`` (run history and the failed list), ``workflows`` (the stored
workflows), ``workflow_reads`` and ``workflow_pages`` (the paged workflow list, its detail and its
PostgreSQL-rendered fast path, as queries on a session or a read pool), ``definitions`` (stored
definitions, history, diff), ``rules`` (what fields may hold), ``views`` (the results),
``ports`` (what the use cases need), ``uow`` and ``credentials`` (the adapters).

A new use case goes into the module of its subject: a function ``(uow, ..., *, options)``
that raises domain errors, returns a view, and queues messages with ``uow.publish`` inside
``uow.transaction()``; its unit test drives it with the fakes in ``tests/fakes.py``.
"""
