"""GRL model: backbones (``build_backbone``), the tiny backbone's pretrained weights (:mod:`grl.models.pretrain`:
made once on synthetic people, as the paper starts from ImageNet) and the model (``build_model``, ``GRL``,
``GRLOutput``)."""

from grl.models.backbone import PretrainedWeightsError, build_backbone
from grl.models.grl import GRL, GRLOutput, build_model, count_parameters

__all__ = ["GRL", "GRLOutput", "PretrainedWeightsError", "build_backbone", "build_model", "count_parameters"]
