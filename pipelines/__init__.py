"""Pipeline definitions. ``python compile.py`` compiles every module here that defines a
``@dsl.pipeline`` into ``pipelines/<module>.yaml``, the committed golden spec."""
