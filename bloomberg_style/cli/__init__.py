"""The `bloomberg-style` command: one module per subcommand, each with `main(argv, prog)`.

The top of the layer order: commands parse flags (derived from the config dataclasses),
call the library and turn its errors into exit code 2. `launch/*.py` are thin shims over
these modules, for launchers (deepspeed, torchrun) that need a file to start.
"""
