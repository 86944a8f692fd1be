"""The autograd lab workspace: tensors and one expression; Q, backward calls, Jacobian, VJP/JVP.

    workspace.py        LabWorkspace: the whole workspace, one widget (what the main window hosts)
    controller.py       LabController: the current core Lab, rebuilt from the editors
    preset_bar.py       the teaching presets and their one-line explanation
    tensor_editor.py    the named tensors: name, value or maker, requires_grad
    expression_box.py   the expression, and its error with the column
    output_view.py      Q: value, shape, grad_fn; the shapes of everything
    backward_panel.py   a button per backward call, v, and the transcript of the call
    jacobian_view.py    the Jacobian as a labelled table; the JVP beside the VJP

Every number comes from core.lab; these widgets only show it.
"""
