"""The built-in demo data, generated from seeds (nothing is downloaded).

corpus        synthetic financial + general documents for pretraining (one invented world)
instructions  instruction / chat records for the demo SFT recipe
tasks         FPB-style and Headline-style few-shot task files (configs/eval/), from the same world

These import only bloomberg_style.atomic, so any layer may use them.
"""
