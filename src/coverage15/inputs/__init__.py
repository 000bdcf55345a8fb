"""Inputs: the run config, facility/demand/unit layers, coordinate systems and input checks.

The first step of the flow (inputs → network → reach → outputs → planning): nothing here
imports from a later step.
"""
