"""The run folder `<output-dir>/<run-id>/`: the one package that names, writes and reads
its files (the Agent Output Protocol folder).

- `layout`: every name inside a run folder (`RunFolder`), the slug rules.
- `documents`: the JSON documents (details, task list, journal rows, manifest), built
  from the models and parsed back.
- `writer`: a run being written (`RunStore`), atomic replacement, new run folders.
- `reader`: runs as they lie on disk, including what a crash (kill -9) leaves behind.

Nothing is imported here: a plain run loads only the modules it uses."""
