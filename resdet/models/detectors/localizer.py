"""ImageNet localization as in the paper's Appendix C.

A classification network names the top-k classes; a ResNet trunk with a per-class RPN
(``PerClassRPN``: one logistic score and one box regressor per class and anchor) gives a
box for each of them; an optional R-CNN stage (``StandardRoIHeads`` on the RPN's
class-specific proposals, per-class cls and reg) re-scores and refines those proposals.

Predictions (eval mode), one dict per image, in original image coordinates when the
targets carry the pipeline's meta (``LocalizationError``'s format):
``labels`` (k), ``scores`` (k: the classifier's softmax probabilities), ``boxes`` (k x 4,
the box of each guessed class) and ``class_boxes`` (C x 4: the RPN's box for every class,
replaced by the refined box for the top-k classes when the R-CNN stage is on), which
gives the error with the ground-truth class known.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...registry import MODELS
from ...structures.boxes import scale_boxes
from ...structures.image_meta import ImageMeta, image_metas
from ...structures.instances import Proposals
from ..utils.shape_spec import build_part, published_shapes


@MODELS.register_module()
class Localizer(nn.Module):
    """Classifier + per-class RPN (+ optional R-CNN) localizer.

    Args:
        classifier: ``ImageClassifier`` config (or module): gives the class guesses.
        backbone: the localization trunk (e.g. ``ResNet(num_stages=3, out_indices=(2,))``,
            conv1-conv4 at stride 16).
        rpn: ``PerClassRPN`` config; ``num_classes`` is filled in, and it is handed the
            trunk's ``output_shape()`` and the preprocessor's padding, from which its parts
            derive the head's ``in_channels`` / ``num_anchors`` and the anchor strides.
        roi_heads: optional ``StandardRoIHeads`` config (the R-CNN stage, per-class cls/reg
            on the RPN's class-specific proposals); ``num_classes`` is filled in, and it is
            handed the trunk's shapes (the pooler's scale, the box head's input channels).
        num_classes: classes ``C`` (overrides the parts' own).
        preprocessor: ``DetPreprocessor`` config of the trunk (normalise, pad).
        topk: class guesses per image (5 in ILSVRC).
        cls_input_size: every image is resized to this square size for the classifier
            (``None``: the images as given, which must then share one size).
        train_classifier: add the classifier's cross-entropy (``loss_cls``) on every image,
            boxed or not; ``False`` keeps the classifier frozen (eval mode, no gradients),
            the paper's separately trained classification network.
        cls_loss_weight: weight of ``loss_cls`` (below 1 fine-tunes the classifier gently: with
            SGD it acts as a smaller learning rate for the classifier alone).
        rcnn_proposals_train / rcnn_proposals_test: class-specific RPN proposals per (image,
            class) fed to the R-CNN stage (the paper: 200).
        test_scales: shorter sides for multi-scale testing of the trunk (the paper's dense
            multi-scale test); each class keeps its best-scoring box over the scales. ``None``:
            the images as the pipeline gives them.
        init_cfg: ``dict(classifier=CKPT, backbone=CKPT, src='resdet_cls')``: ``init_weights()``
            (called by the trainer, not at evaluation) loads the classifier from
            ``classifier`` and the trunk (and the R-CNN head's conv5) from ``backbone``
            (default: the same file) — the paper's ImageNet pre-training.

    ``forward(inputs: list of 3 x H_i x W_i uint8, targets=None)``: training targets are
    ``loc_collate``'s (``boxes``, ``labels``; ``image_labels`` when ``train_classifier``); eval
    returns the predictions.
    """

    def __init__(
        self,
        classifier: dict | nn.Module,
        backbone: dict | nn.Module,
        rpn: dict | nn.Module,
        roi_heads: dict | nn.Module | None = None,
        num_classes: int | None = None,
        preprocessor: dict | nn.Module | None = None,
        topk: int = 5,
        cls_input_size: int | None = 224,
        train_classifier: bool = False,
        cls_loss_weight: float = 1.0,
        rcnn_proposals_train: int = 64,
        rcnn_proposals_test: int = 200,
        test_scales: Sequence[int] | None = None,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__()
        if isinstance(classifier, dict) and num_classes is not None:
            classifier = dict(classifier, num_classes=num_classes)
        self.classifier = MODELS.build(classifier)
        self.num_classes = int(num_classes or self.classifier.num_classes)
        if self.classifier.num_classes != self.num_classes:
            raise ValueError(
                f"Localizer num_classes={self.num_classes} but the classifier has {self.classifier.num_classes}"
            )
        self.preprocessor = MODELS.build(preprocessor or dict(type="DetPreprocessor"))
        self.backbone = MODELS.build(backbone)
        shapes = published_shapes(self.backbone, "backbone")
        if isinstance(rpn, dict):
            rpn = dict(rpn, num_classes=self.num_classes)
        self.rpn = build_part(
            rpn, "model.rpn", input_shape=shapes, size_divisor=int(getattr(self.preprocessor, "size_divisor", 1))
        )
        if isinstance(roi_heads, dict):
            roi_heads = dict(roi_heads, num_classes=self.num_classes)
        self.roi_heads = build_part(roi_heads, "model.roi_heads", input_shape=shapes) if roi_heads is not None else None
        for name, part in (("rpn", self.rpn), ("roi_heads", self.roi_heads)):
            if part is not None and part.num_classes != self.num_classes:
                raise ValueError(f"Localizer num_classes={self.num_classes} but {name} has {part.num_classes}")
        if topk < 1:
            raise ValueError(f"Localizer topk must be >= 1, got {topk}")
        self.topk = min(int(topk), self.num_classes)
        self.cls_input_size = cls_input_size
        self.train_classifier, self.cls_loss_weight = bool(train_classifier), float(cls_loss_weight)
        self.rcnn_proposals = {True: int(rcnn_proposals_train), False: int(rcnn_proposals_test)}
        self.test_scales = [int(v) for v in test_scales] if test_scales else None
        unknown = set(init_cfg or {}) - {"classifier", "backbone", "src"}
        if unknown:
            raise KeyError(f"Localizer init_cfg keys {sorted(unknown)} unknown; allowed: classifier, backbone, src")
        self.init_cfg = dict(init_cfg or {})
        if not self.train_classifier:
            self.classifier.requires_grad_(False)

    # ---------------------------------------------------------------- weights
    def init_weights(self) -> dict:
        """Load the classification checkpoints of ``init_cfg`` (a no-op without it)."""
        from ..converters import load_weights
        from .init_weights import init_from_classifier

        report = {}
        cls_ckpt = self.init_cfg.get("classifier")
        trunk_ckpt = self.init_cfg.get("backbone", cls_ckpt)
        for path in (cls_ckpt, trunk_ckpt):
            if path and not os.path.isfile(path):
                raise FileNotFoundError(
                    f"Localizer init_cfg: checkpoint {path} does not exist (train the "
                    "classifier first, e.g. python tools/train_cls.py configs/shapes_cls.py)"
                )
        if cls_ckpt:
            report["classifier"] = load_weights(self.classifier, cls_ckpt, strict=True)
        if trunk_ckpt:
            report["backbone"] = init_from_classifier(self, trunk_ckpt, src=self.init_cfg.get("src", "resdet_cls"))
        return report

    def train(self, mode: bool = True) -> Localizer:
        super().train(mode)
        if not self.train_classifier:
            self.classifier.eval()  # frozen: BN statistics stay those of the classification run
        return self

    # ---------------------------------------------------------------- parts
    def classify(self, inputs: Sequence[Tensor]) -> Tensor:
        """``N x C`` classifier logits; images resized to ``cls_input_size`` squares."""
        if self.cls_input_size is None:
            sizes = {tuple(i.shape[-2:]) for i in inputs}
            if len(sizes) > 1:
                raise ValueError(f"Localizer: images of sizes {sorted(sizes)} need cls_input_size set")
            batch = torch.stack(list(inputs))
        else:
            size = (int(self.cls_input_size), int(self.cls_input_size))
            resized = [
                F.interpolate(i[None].float(), size=size, mode="bilinear", align_corners=False, antialias=True)[0]
                if tuple(i.shape[-2:]) != size
                else i.float()
                for i in inputs
            ]
            batch = torch.stack(resized)
            if not inputs[0].is_floating_point():  # back to uint8 so the classifier normalises
                batch = batch.round().clamp(0, 255).to(torch.uint8)
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.train_classifier):
            features = self.classifier.extract_features(batch)
            return self.classifier.head(features[self.classifier.feature_key])

    def _trunk(self, inputs: Sequence[Tensor]):
        batch, sizes, factors = self.preprocessor(inputs)
        return self.backbone(batch), batch.shape[-2:], sizes, factors

    # ---------------------------------------------------------------- forward
    def forward(self, inputs: Sequence[Tensor] | Tensor, targets: list[dict] | None = None):
        inputs = list(inputs)
        if self.training:
            if targets is None:
                raise ValueError("Localizer in training mode needs targets (boxes, labels, image_labels)")
            return self.losses(inputs, targets)
        return self.predict(inputs, targets)

    def losses(self, inputs: list[Tensor], targets: list[dict]) -> dict[str, Tensor]:
        features, padded, sizes, factors = self._trunk(inputs)
        targets = [_scaled_target(t, f, self.train_classifier) for t, f in zip(targets, factors)]
        logits, deltas, anchors, losses = self.rpn(features, sizes, padded, targets)
        if self.roi_heads is not None:
            losses.update(self._rcnn_losses(features, logits, deltas, anchors, sizes, targets))
        if self.train_classifier:
            cls_logits = self.classify(inputs)
            labels = torch.stack([t["image_labels"][0] for t in targets]).to(cls_logits.device)
            losses["loss_cls"] = F.cross_entropy(cls_logits, labels) * self.cls_loss_weight
            with torch.no_grad():
                losses["train_err"] = (cls_logits.argmax(1) != labels).float().mean()
        return losses

    def _rcnn_losses(
        self,
        features: dict[str, Tensor],
        logits: Tensor,
        deltas: Tensor,
        anchors: Tensor,
        sizes: list[tuple[int, int]],
        targets: list[dict],
    ) -> dict[str, Tensor]:
        """R-CNN stage losses on the RPN's proposals for each image's ground-truth classes
        (the paper's class-dependent proposals), renamed ``loss_rcnn_cls`` / ``loss_rcnn_bbox``."""
        images, classes, _ = self.rpn.class_rows(targets, logits.device)
        if not images:  # no boxes in the batch: zero losses that keep the graph
            zero = sum(p.sum() for p in self.roi_heads.parameters()) * 0.0
            return {"loss_rcnn_cls": zero, "loss_rcnn_bbox": zero.clone()}
        image_index = torch.as_tensor(images, device=logits.device)
        class_index = torch.as_tensor(classes, device=logits.device).view(-1, 1)
        boxes, scores = self.rpn.class_proposals(
            logits[image_index].detach(),
            deltas[image_index].detach(),
            anchors,
            class_index,
            [sizes[i] for i in images],
            self.rcnn_proposals[True],
        )
        rows = [[row for row, image in enumerate(images) if image == index] for index in range(len(targets))]
        proposals = [
            Proposals(boxes=boxes[image_rows, 0].reshape(-1, 4), scores=scores[image_rows, 0].reshape(-1))
            for image_rows in rows
        ]
        _, roi_losses = self.roi_heads(features, proposals, sizes, targets)
        names = {"loss_cls": "loss_rcnn_cls", "loss_bbox": "loss_rcnn_bbox"}
        return {names.get(k, k): v for k, v in roi_losses.items()}

    @torch.no_grad()
    def predict(self, inputs: list[Tensor], targets: Sequence[dict | ImageMeta] | None = None) -> list[dict]:
        """One dict per image (see the module docstring). With ``test_scales`` each class keeps
        the box of the scale where it scored highest (RPN, or R-CNN for refined classes)."""
        probs = F.softmax(self.classify(inputs).float(), dim=1)
        scores, labels = probs.topk(self.topk, dim=1)  # N x k
        n = len(inputs)
        all_classes = torch.arange(self.num_classes, device=labels.device).expand(n, -1)
        class_boxes = best_scores = None
        for scale in self.test_scales or [None]:
            batch, sizes, factors = self.preprocessor(inputs, min_size=scale)
            features = self.backbone(batch)
            logits, deltas, anchors, _ = self.rpn(features, sizes, batch.shape[-2:])
            boxes, box_scores = self.rpn.class_proposals(logits, deltas, anchors, all_classes, sizes, 1)
            boxes, box_scores = boxes[:, :, 0], box_scores[:, :, 0]  # N x C x 4, N x C
            if self.roi_heads is not None:
                boxes, box_scores = self._refine(features, logits, deltas, anchors, labels, sizes, boxes, box_scores)
            inverse = torch.tensor(
                [[1 / w, 1 / h, 1 / w, 1 / h] for w, h in factors], dtype=boxes.dtype, device=boxes.device
            )
            boxes = boxes * inverse[:, None, :]  # input-image pixels
            if class_boxes is None:
                class_boxes, best_scores = boxes, box_scores
            else:
                better = box_scores > best_scores
                class_boxes = torch.where(better[..., None], boxes, class_boxes)
                best_scores = torch.maximum(box_scores, best_scores)
        predictions = [{"labels": labels[i], "scores": scores[i], "class_boxes": class_boxes[i]} for i in range(n)]
        return self.postprocess(predictions, image_metas(inputs, targets))

    @staticmethod
    def postprocess(predictions: list[dict], metas: Sequence[ImageMeta]) -> list[dict]:
        """Predictions in the input images' pixels -> in the original images (``class_boxes``
        ``C x 4`` mapped back by each ``ImageMeta``; ``boxes`` ``k x 4`` those of ``labels``)."""
        out = []
        for prediction, meta in zip(predictions, metas):
            class_boxes = meta.boxes_to_original(prediction["class_boxes"])
            out.append(dict(prediction, boxes=class_boxes[prediction["labels"]], class_boxes=class_boxes))
        return out

    def _refine(
        self,
        features: dict[str, Tensor],
        logits: Tensor,
        deltas: Tensor,
        anchors: Tensor,
        labels: Tensor,
        sizes: list[tuple[int, int]],
        class_boxes: Tensor,
        class_scores: Tensor,
    ) -> tuple[Tensor, Tensor]:
        """R-CNN stage: for each guessed class, its RPN proposals are re-scored and regressed by
        the RoI head; the best one (class probability) replaces the class's box and score."""
        n, k = labels.shape
        top_n = self.rcnn_proposals[False]
        boxes, _ = self.rpn.class_proposals(logits, deltas, anchors, labels, sizes, top_n)  # N x k x P x 4
        probs, refined = self.roi_heads.predict(features, list(boxes.reshape(n, -1, 4)), sizes)
        probs = probs.view(n, k, top_n, -1)
        refined = refined.view(n, k, top_n, self.num_classes, 4)
        cls = labels[:, :, None].expand(n, k, top_n)
        class_probs = probs.gather(3, cls[..., None])[..., 0]  # N x k x P
        class_refined = refined.gather(3, cls[..., None, None].expand(-1, -1, -1, 1, 4))[..., 0, :]
        best_prob, best = class_probs.max(dim=2)  # N x k
        chosen = class_refined.gather(2, best[..., None, None].expand(-1, -1, 1, 4))[:, :, 0]
        rows = torch.arange(n, device=labels.device)[:, None].expand(n, k)
        out_boxes, out_scores = class_boxes.clone(), class_scores.clone()
        out_boxes[rows, labels], out_scores[rows, labels] = chosen, best_prob.to(out_scores.dtype)
        return out_boxes, out_scores


def _scaled_target(target: dict, factor: tuple[float, float], needs_image_labels: bool) -> dict:
    """Targets in batch coordinates when the preprocessor resized the images."""
    if "boxes" not in target or "labels" not in target:
        raise KeyError(f"Localizer targets need 'boxes' and 'labels'; got keys {sorted(target)}")
    if needs_image_labels and "image_labels" not in target:
        raise KeyError("Localizer targets need 'image_labels' (use collate='loc_collate')")
    if tuple(factor) == (1.0, 1.0):
        return target
    return dict(target, boxes=scale_boxes(target["boxes"].float(), factor[0], factor[1]))
