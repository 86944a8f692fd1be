"""The autograd lab: named tensors and one expression -> Q, its grads, Jacobian, VJP and JVP.

No optimizer here: the lab shows what torch computes when a learner calls backward the ways
PyTorch allows. The package is split by what each part is about:

    values.py       tensor text ("[2., 3.]", "randn(2, seed=0)") -> a float64 tensor; LabError
    expression.py   the expression grammar: tokens -> tree (recursive descent) -> torch ops
    workbench.py    Lab: tensors + program -> Q and every backward call, Jacobian, VJP, JVP
    presets.py      teaching presets, each with one line of explanation
    report.py       autograd_report(): the headless result the CLI prints as JSON
    cli.py          argparse wiring for `main.py autograd` (imports torch only when it runs)

This file imports nothing, so `core.lab.cli` can build its parser without loading torch.
"""
