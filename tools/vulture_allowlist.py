"""Names vulture cannot see used, each with the reason (`make test` runs vulture with this list).

Everything else that only tests call is deleted or made the code that runs.
"""

# ruff: noqa
import ptdiag

ptdiag.__getattr__  # lazy module attributes (PEP 562): `ptdiag.analyze` etc.
from ptdiag.cli import analyze_cmd, app, check_cmd, curate_cmd, demo_cmd, er_cmd, inspect_cmd, report_cmd, score_cmd

# Typer registers these by decorator; the app calls them.
analyze_cmd.analyze_command, check_cmd.check_command, demo_cmd.demo_command, er_cmd.er_command
inspect_cmd.inspect_command, report_cmd.report_command, score_cmd.score_command, curate_cmd.curate_command
app._root
from ptdiag import api

api.Results.to_markdown, api.Results._repr_html_  # the library's API for users and notebooks (IPython calls _repr_html_)
from ptdiag.cli import _options

_options.options_markdown  # the docs/OPTIONS.md generator: `make options` writes it, a test checks it is current
_options.__signature__, _options.__annotations__  # set on a command so Typer reads the derived options (inspect)
app.Console.on_broken_pipe  # Rich's documented hook for a closed stdout, overridden for the CLI

from ptdiag.engine import models

models.ptdiag_smallcnn  # timm's @register_model: created by name through timm.create_model
models.SmallCNN.reset_classifier  # timm's model API, called by timm helpers

from ptdiag.scenarios import catalog

# @scenario registers each known-answer scenario; the registry calls them by name
catalog._tint_bias, catalog._unseen_tint, catalog._vflip, catalog._label_shift, catalog._no_shift, catalog._toy

from ptdiag.scenarios import sources

sources.fashion_mnist_available  # public check, used by the test suite to skip without the Debian package
_.writeable  # numpy's `array.flags.writeable`, set to hand out read-only views

from ptdiag.stats import support

# stored in the support job's arrays by name (ptdiag.engine.jobkinds.support._SUPPORT_ARRAYS) and read back from them
support.SupportSplit.logit_shift, support.SupportSplit.logit_reference

from ptdiag.engine.jobkinds import baseline, features, finetune, remedies

# Job parameters that only identify a job: hashed into its key (a changed checkpoint file, a resize source, the
# version of a job's algorithm), never read by the job itself.
finetune.ActivationParams.weights_sha, finetune.ActivationParams.all_images, features.FeatureParams.weights_sha
baseline.BaselineParams.source_size, remedies.RemedyParams.max_dim, remedies.RemedyParams.scratch_key
