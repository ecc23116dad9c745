"""Task sources: standard input, `::: values`, `--glob`, the TOML task file and a
resumed run's saved list, one module each; `open_source` opens the one a request names.

Each becomes a stream of TaskSpec with its origin (`stdin:17`, `glob:src/a.py`,
`:::2`, `tasks.toml:12`). This package's own module stays empty of imports, so that
`fanout --help` can read a request (sources.request) without loading the engine."""
