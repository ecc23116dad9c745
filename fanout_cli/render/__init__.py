"""Everything fanout prints, and nothing else: commands return data, these modules print it.

Imports point one way, and no module here imports fanout's commands:

    choose -> live -> tables -> lines -> console
    choose -> machine -> lines
    runs, merge -> machine, lines -> console
    junit (the JUnit XML writer) -> nothing of render

`console` is the only module that writes to the terminal. This file stays empty: a
plain run loads only the modules it uses."""
