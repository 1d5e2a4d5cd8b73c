"""Synthetic cfaug datasets written in exactly the official on-disk layouts (specs/cfaug.md §3.0, §9 smoke).

Every image is a class-coloured foreground square on a noisy background whose colour follows the label in
training (and in IN-9 original / mixed_same, WB Original, CCT cis) and is mismatched in the shifted test sets
(IN-9 mixed_rand / mixed_next, WB Flip, CCT trans), so a model that reads the background does worse there.
Deterministic: the same arguments give the same bytes. Built-in irregularities the loaders must handle: one IN-9
train image without a no_fg twin and one without a CAGAN infill; soft WB segmentations; CCT full-size JSON
coordinates (4x the _sm images), an image with two species, a two-bbox group, a no-bbox group, `empty`
(category 30) images and one train image without an infill.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from repro.data.in9 import CLASSES
from repro.data.waterbirds import METADATA, ORIGINAL_FOLDER

IN9_TESTS = ("original", "mixed_same", "mixed_rand", "mixed_next", "only_fg", "no_fg", "only_bg_b", "only_bg_t")
WB_SPECIES = (("001.Song_Sparrow", "002.Field_Wren"), ("003.Herring_Gull", "004.Mallard"))  # landbirds, waterbirds
CCT_IDS = (1, 3, 5, 6, 7, 8, 9, 10, 11, 16, 21, 33, 34, 51, 99)  # 15 species; 30 = empty
CCT_SPLITS = ("train", "cis_val", "trans_val", "cis_test", "trans_test")
CCT_SCALE = 4  # JSON width/height (and bboxes) are 4x the _sm image size
Box = tuple[int, int, int, int]


class _Painter:
    """Seeded scene drawing: palettes and (H, W, 3) uint8 images with foreground squares."""

    def __init__(self, seed: int, classes: int) -> None:
        self.gen = torch.Generator().manual_seed(seed)
        self.fg = torch.randint(60, 256, (classes, 3), generator=self.gen)  # all channels > 0 (IN-9 no_fg rule)
        self.bg = torch.randint(0, 200, (classes, 3), generator=self.gen)

    def int(self, low: int, high: int) -> int:
        """Uniform integer in [low, high]."""
        return int(torch.randint(low, high + 1, (1,), generator=self.gen))

    def box(self, h: int, w: int) -> Box:
        side = self.int(max(2, h // 4), max(2, h // 2))
        return self.int(0, w - side), self.int(0, h - side), side, side

    def background(self, h: int, w: int, bg: int) -> torch.Tensor:
        noise = torch.randint(-20, 21, (h, w, 3), generator=self.gen)
        return (self.bg[bg] + noise).clamp(0, 255)

    def paint(self, canvas: torch.Tensor, boxes: list[Box], colours: list[int]) -> np.ndarray:
        out = canvas.clone()
        for (x, y, w, h), c in zip(boxes, colours):
            noise = torch.randint(-10, 11, (h, w, 3), generator=self.gen)
            out[y:y + h, x:x + w] = (self.fg[c] + noise).clamp(60, 255)
        return out.to(torch.uint8).numpy()


def box_array(h: int, w: int, boxes: list[Box], value: int = 1) -> np.ndarray:
    """(H, W) uint8: `value` inside the boxes, 0 elsewhere."""
    out = np.zeros((h, w), np.uint8)
    for x, y, bw, bh in boxes:
        out[y:y + bh, x:x + bw] = value
    return out


def _save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(array)
    image.save(path, quality=95) if path.suffix == ".jpg" else image.save(path)


def _in9(root: Path, per_class: int, size: int, seed: int) -> None:
    p = _Painter(seed, len(CLASSES))
    train, test = root / "bg_challenge" / "train", root / "bg_challenge" / "test"
    names = []
    for c, cls in enumerate(CLASSES):
        for k in range(per_class + 1):  # the last one is IN-9L only (not in IN-9, for data_ratio > 1)
            name, box = f"n{c:08d}_{k:05d}.png", p.box(size, size)
            canvas = p.background(size, size, c)
            image = p.paint(canvas, [box], [c])
            _save(train / "in9l" / "train" / cls / name, image)
            if k == per_class:
                continue
            names.append(name)
            _save(train / "original" / "train" / cls / name, image)
            if (c, k) != (0, 0):  # one train image without its no_fg twin: no mask
                _save(train / "no_fg" / "train" / cls / name, image * (1 - box_array(size, size, [box]))[..., None])
            if (c, k) != (len(CLASSES) - 1, per_class - 1):  # one without a CAGAN infill: zeros
                _save(train / "original_bbox_cf_cagan" / "train" / cls / name, canvas.to(torch.uint8).numpy())
        for k in range(max(1, per_class // 2)):
            _save(train / "original" / "val" / cls / f"n{c:08d}_{50000 + k:05d}.png",
                  p.paint(p.background(size, size, c), [p.box(size, size)], [c]))
            _save(train / "in9l" / "val" / cls / f"n{c:08d}_{60000 + k:05d}.png",
                  p.paint(p.background(size, size, c), [p.box(size, size)], [c]))
            stem, box = f"n{c:08d}_{70000 + k:05d}", p.box(size, size)
            fg = box_array(size, size, [box])
            rand = (c + p.int(1, len(CLASSES) - 1)) % len(CLASSES)
            scenes = {"original": (c, stem), "mixed_same": (c, f"fg_{stem}_bg_n{c:08d}_{80000 + k:05d}"),
                      "mixed_rand": (rand, f"fg_{stem}_bg_n{rand:08d}_{80000 + k:05d}"),
                      "mixed_next": ((c + 1) % len(CLASSES),
                                     f"fg_{stem}_bg_n{(c + 1) % len(CLASSES):08d}_{80000 + k:05d}")}
            for variant, (bg, name) in scenes.items():
                _save(test / variant / "val" / cls / f"{name}.png", p.paint(p.background(size, size, bg), [box], [c]))
            original = p.paint(p.background(size, size, c), [box], [c])
            keep_fg, keep_bg = fg[..., None], 1 - fg[..., None]
            _save(test / "only_fg" / "val" / cls / f"{stem}.png", original * keep_fg)
            _save(test / "no_fg" / "val" / cls / f"{stem}.png", original * keep_bg)
            _save(test / "only_bg_b" / "val" / cls / f"{stem}.png", original * keep_bg)
            _save(test / "only_bg_t" / "val" / cls / f"{stem}.png", p.background(size, size, c).to(torch.uint8).numpy())
            (test / "fg_mask" / "val" / cls).mkdir(parents=True, exist_ok=True)
            np.save(test / "fg_mask" / "val" / cls / f"{stem}.npy", fg)
    (train / "original" / "train_filenames").write_text("".join(f"{n}\n" for n in names))


def _waterbirds(root: Path, per_class: int, size: int, seed: int) -> None:
    p = _Painter(seed, 2)
    base = root / "waterbird"
    h, w = size, size + size // 4
    many, few = per_class, max(1, per_class // 4)
    plan = [(0, y, place, many if place == y else few) for y in (0, 1) for place in (0, 1)]
    plan += [(s, y, place, max(1, per_class // 2)) for s in (1, 2) for y in (0, 1) for place in (0, 1)]
    rows = []
    for split, y, place, n in plan:
        for _ in range(n):
            img_id = len(rows) + 1
            species = WB_SPECIES[y][img_id % 2]
            rel = f"{species}/{species.split('.')[1]}_{img_id:04d}.jpg"
            box = p.box(h, w)
            canvas = p.background(h, w, place)
            _save(base / ORIGINAL_FOLDER / rel, p.paint(canvas, [box], [y]))
            x, yy, bw, bh = box  # soft CUB-like mask: 255 inside, a faint ring around
            x0, y0 = max(0, x - 1), max(0, yy - 1)
            ring = (x0, y0, min(w, x + bw + 1) - x0, min(h, yy + bh + 1) - y0)
            seg = np.maximum(box_array(h, w, [ring], 3), box_array(h, w, [box], 255))
            _save(base / "segmentations" / rel.replace(".jpg", ".png"), seg)
            if split == 0:
                _save(base / "cagan" / rel, canvas.to(torch.uint8).numpy())
            rows.append({"img_id": img_id, "img_filename": rel, "y": y, "split": split, "place": place,
                         "place_filename": f"/{'lw'[place]}/{'land' if place == 0 else 'water'}/{img_id:08d}.jpg"})
    with open(base / ORIGINAL_FOLDER / METADATA, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _cct(root: Path, per_class: int, size: int, seed: int) -> None:
    p = _Painter(seed, len(CCT_IDS))
    base = root / "cct"
    h, w = size, round(size * 4 / 3)
    counter = [0]

    def image(scenes: list[tuple[int, bool]], bg: int, infill: bool, store: dict[str, list[dict]]) -> None:
        """One _sm image with one square per (class, has bbox) of `scenes`; class -1 = empty."""
        counter[0] += 1
        image_id = f"{counter[0]:08x}-0000-11e8-a6a3-{seed:012x}"
        boxes = [p.box(h, w) for _ in scenes]
        canvas = p.background(h, w, bg)
        _save(base / "eccv_18_all_images_sm" / f"{image_id}.jpg",
              p.paint(canvas, [b for b, (c, _) in zip(boxes, scenes) if c >= 0], [c for c, _ in scenes if c >= 0]))
        if infill:
            _save(base / "cagan" / f"{image_id}.jpg", canvas.to(torch.uint8).numpy())
        store["images"].append({"id": image_id, "file_name": f"{image_id}.jpg", "width": w * CCT_SCALE,
                                "height": h * CCT_SCALE, "location": bg})
        for box, (c, has_box) in zip(boxes, scenes):
            ann = {"id": f"a{len(store['annotations']):06d}", "image_id": image_id,
                   "category_id": CCT_IDS[c] if c >= 0 else 30}
            if has_box and c >= 0:
                ann["bbox"] = [float(v * CCT_SCALE) for v in box]
            store["annotations"].append(ann)

    notes = base / "eccv_18_annotation_files"
    notes.mkdir(parents=True, exist_ok=True)
    categories = [{"id": i, "name": f"species_{i}"} for i in CCT_IDS] + [{"id": 30, "name": "empty"}]
    for split in CCT_SPLITS:
        store: dict[str, list[dict]] = {"images": [], "annotations": [], "categories": categories}
        trans = split.startswith("trans")
        n = per_class if split == "train" else max(1, per_class // 2)
        for c in range(len(CCT_IDS)):
            for k in range(n):
                image([(c, True)], (c + 1) % len(CCT_IDS) if trans else c,
                      split == "train" and (c, k) != (0, 0), store)
        image([(-1, False)], 0, split == "train", store)  # an `empty` image
        if split == "train":
            image([(1, True), (2, True)], 1, True, store)  # two species: two samples
            image([(3, True), (3, True)], 3, True, store)  # one group with two bboxes
            image([(4, False)], 4, True, store)  # a group without a bbox
        (notes / f"{split}_annotations.json").write_text(json.dumps(store, indent=1, sort_keys=True))


WRITERS = {"in9": _in9, "waterbirds": _waterbirds, "cct": _cct}


def write_fixtures(root: Path | str, dataset: str, *, per_class: int = 4, size: int = 32, seed: int = 0) -> Path:
    """Write the synthetic `dataset` ("in9", "waterbirds" or "cct") under the data root `root` in its official
    layout (bg_challenge/, waterbird/, cct/); `per_class` train images per class (IN-9, CCT) or per majority
    group (WB), half as many per eval split; images `size` px high. Returns `root`."""
    if dataset not in WRITERS:
        raise ValueError(f"unknown cfaug dataset {dataset!r}; expected one of {', '.join(WRITERS)}")
    if per_class < 1 or size < 8:
        raise ValueError("per_class must be >= 1 and size >= 8")
    root = Path(root)
    WRITERS[dataset](root, per_class, size, seed)
    return root
