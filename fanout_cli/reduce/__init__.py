"""The reduce step: after the last task, one command or agent call combines the results.

- `spec`: what the reduce is (options, the [reduce] table, placeholders); cheap to import.
- `inputs`: what it is given, read back from the run folder and streamed.
- `execute`: running it after the tasks, and what it does to the verdict.
- `record`: reduce.json, and the reduce's entry in the manifest and reports.

Nothing is imported here: the option parsers load `spec` alone."""
