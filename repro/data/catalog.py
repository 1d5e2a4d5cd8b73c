"""The table of every dataset the four papers read, for `repro data check` and `repro data download`.

Each `DatasetSpec` knows where its dataset lives under the data root, the expected layout, how to obtain it, and
its probe: a quick check that counts files with `os.scandir`, reads only headers and decodes only the first and
last files (`repro.data.probes`). A dataset with a shared reader in `repro.data` has its probe beside that reader
(`repro.data.celeba.probe`, ...); the datasets read only by a paper's own reader keep theirs here until the paper
registry lets a paper declare its datasets. Expected counts are the full-dataset counts from the specs
(`../shared/specs/*.md`).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from repro.data import cats_dogs, celeba, cifar10, in9, mnist_files, svhn, waterbirds
from repro.data.probes import (Finding, Probe, Split, State, absent_names, bad_file, class_tree, csv_images,
                               list_files, nifti_check, relative, state_of, verify_ends)
from repro.errors import DatasetError


@dataclass(frozen=True)
class DatasetStatus:
    """Result of checking one dataset on disk."""

    name: str
    state: State
    path: Path
    counts: str
    detail: str


_HINTS = {"missing": "Obtain", "corrupt": "Re-obtain", "subset": "Full dataset"}


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset: where it lives under the data root, what it looks like, how to get and check it."""

    name: str
    papers: tuple[str, ...]
    relpath: str
    layout: str
    obtain: str
    probe: Probe = field(repr=False, compare=False)

    def check(self, root: Path) -> DatasetStatus:
        """Look for this dataset under data root `root` and count what is there."""
        path = root / self.relpath
        if not path.is_dir():
            return self.status(path, Finding("missing", "", f"{self.relpath}/ not found"))
        try:
            finding = self.probe(path)
        except DatasetError as err:
            if err.path is None:  # not one bad file: the layout itself, said as it is
                raise
            finding = Finding("corrupt", "", f"{relative(err.path, path)}: {err.problem}")
        return self.status(path, finding)

    def status(self, path: Path, finding: Finding) -> DatasetStatus:
        """Turn a finding into a status whose detail says how to fix anything that is not found."""
        hint = _HINTS.get(finding.state)
        fetch = f" (`repro data download {self.name}` fetches it into the data root, or says how)"
        detail = ". ".join(filter(None, (finding.note, hint and f"{hint}: {self.obtain}{fetch}")))
        return DatasetStatus(self.name, finding.state, path, finding.counts, detail)


# --- probes of the datasets read only by a paper's own reader ----------------------------------------------


def _synth2(path: Path) -> Finding:
    names = list_files(path, (".npy",))
    per = Counter(n.rsplit("_", 1)[0] for n in names)
    groups = [f"distractor{p}_{k}" for p in (1, 2, 3) for k in ("img", "seg")]
    counts = ", ".join(f"distractor{p} {per[f'distractor{p}_img']}" for p in (1, 2, 3))
    if not any(per[g] for g in groups):
        return Finding("missing", "", "no distractor{1,2,3}_{img,seg}_<i>.npy files")
    verify_ends(path, [n for n in names if n.rsplit("_", 1)[0] in groups], (28, 28))
    short = [g for g in groups if per[g] < 512]
    return Finding(state_of(not short), counts, f"fewer than 512 files in {', '.join(short)}" if short else "")


def msd_task(expected: int) -> Probe:
    """Probe for a Medical Segmentation Decathlon task folder with `expected` training volumes."""

    def probe(path: Path) -> Finding:
        meta = path / "dataset.json"
        if not meta.is_file():
            return Finding("missing", "", "dataset.json missing")
        try:
            pairs = [(e["image"].removeprefix("./"), e["label"].removeprefix("./"))
                     for e in json.loads(meta.read_text())["training"]]
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise bad_file(meta, f"has no usable 'training' list ({err})") from err
        present = {f"{d}/{n}" for d in ("imagesTr", "labelsTr") for n in list_files(path / d, (".nii.gz",))}
        complete = [image for image, label in pairs if image in present and label in present]
        counts = f"training volumes {len(complete)} of {len(pairs)} listed"
        if not complete:
            return Finding("missing", counts, "imagesTr/ and labelsTr/ lack the volumes dataset.json lists")
        for image in sorted({complete[0], complete[-1]}):
            nifti_check(path / image)
        done = len(complete) >= expected
        return Finding(state_of(done), counts, "" if done else f"{len(complete)} of {expected} training volumes")

    return probe


_CCT_SPLITS = {"train": 13_553, "cis_val": 3_484, "cis_test": 15_827, "trans_test": 23_275}


def _cct(path: Path) -> Finding:
    notes = path / "eccv_18_annotation_files"
    absent = absent_names(path, [f"{notes.name}/{s}_annotations.json" for s in _CCT_SPLITS] + ["eccv_18_all_images_sm/"])
    if absent:
        return Finding("missing", "", f"missing {', '.join(absent)}")
    on_disk = set(list_files(path / "eccv_18_all_images_sm", (".jpg",)))
    listed = {split: [f"{im['id']}.jpg" for im in _json_images(notes / f"{split}_annotations.json")]
              for split in _CCT_SPLITS}
    have = {split: sum(name in on_disk for name in names) for split, names in listed.items()}
    cagan = set(list_files(path / "cagan", (".jpg",)))
    with_cagan = sum(name in cagan for name in listed["train"])
    counts = ", ".join(f"{s} {n}" for s, n in have.items()) + f"; train with cagan {with_cagan}"
    if not on_disk:
        return Finding("missing", counts, "eccv_18_all_images_sm/ holds no .jpg")
    verify_ends(path / "eccv_18_all_images_sm", list(on_disk))
    problems = [f"{s} {have[s]} of {n} images" for s, n in _CCT_SPLITS.items() if have[s] < n]
    if with_cagan < len(listed["train"]):
        problems.append(f"cagan/ covers {with_cagan} of {len(listed['train'])} train images (cfaug C-16)")
    return Finding(state_of(not problems), counts, "; ".join(problems))


def _json_images(path: Path) -> list[dict]:
    try:
        return json.loads(path.read_text())["images"]
    except (ValueError, KeyError, TypeError) as err:
        raise bad_file(path, f"not a COCO-style annotation file ({err})") from err


# --- the table ---------------------------------------------------------------------------------------------

_MSD_OBTAIN = "download {task}.tar from http://medicaldecathlon.com and untar it into MSD/"
_IN9_TEST = ("original", "mixed_same", "mixed_rand", "mixed_next")  # 450 per class each (cfaug §3.1)

DATASETS: tuple[DatasetSpec, ...] = (
    DatasetSpec(
        "actdiff_synth", ("actdiff",), "synth2",
        "distractor{1,2,3}_{img,seg}_{0..511}.npy, float64 28×28 (optional)",
        "optional: used when present (switch A-20 synth2_files), else repro generates statistically "
        "equivalent data; `repro data download actdiff_synth` fetches them (data/synth2/ of the authors' "
        "repository github.com/josephdviviano/saliency-red-herring)",
        _synth2),
    *(DatasetSpec(
        f"msd_{organ.lower()}", ("actdiff",), f"MSD/{task}",
        f"MSD/{task}/{{dataset.json, imagesTr/*.nii.gz, labelsTr/*.nii.gz}}, {n} training volumes",
        _MSD_OBTAIN.format(task=task), msd_task(n))
      for organ, task, n in (("Heart", "Task02_Heart", 20), ("Liver", "Task03_Liver", 131),
                             ("Pancreas", "Task07_Pancreas", 281))),
    DatasetSpec(
        "nih_cxr14", ("actdiff",), "NIH",
        "NIH/{Data_Entry_2017.csv, images-128/<Image Index>.png} (PNGs pre-resized to 128×128)",
        "https://nihcc.app.box.com/v/ChestXray-NIHCC (Data_Entry_2017.csv, images_*.tar.gz); "
        "resize every PNG to 128×128 (bilinear) into NIH/images-128/",
        csv_images("Data_Entry_2017.csv", ("Image Index", "Finding Labels"), "images-128", 112_120)),
    DatasetSpec(
        "padchest", ("actdiff",), "PadChest",
        "PadChest/{PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv, images-128/<ImageID>.png} (16-bit, 128×128)",
        "https://bimcv.cipf.es/bimcv-projects/padchest/ (registration); resize every PNG to 128×128 keeping "
        "16 bits (bilinear) into PadChest/images-128/",
        csv_images("PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv",
                   ("ImageID", "Labels", "ViewPosition_DICOM"), "images-128", None)),
    DatasetSpec(
        "mnist", ("tap", "masktune"), "MNIST",
        "MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz (or subset/train-5k-*)",
        "torchvision.datasets.MNIST(root=<data root>, download=True) (writes MNIST/raw/*.gz)",
        mnist_files.probe),
    DatasetSpec(
        "chest_xray", ("tap",), "chest_xray",
        "chest_xray/{train,[val],test}/{NORMAL,PNEUMONIA}/*.jpeg",
        "kaggle datasets download -d paultimothymooney/chest-xray-pneumonia (unzip to chest_xray/), "
        "or Mendeley Data doi:10.17632/rscbjbr9sj (ChestXRay2017.zip)",
        class_tree((Split(("train", "val"), (1349, 3883)), Split(("test",), (234, 390))), ("NORMAL", "PNEUMONIA"))),
    DatasetSpec(
        "knee_kl224", ("tap",), "kneeKL224",
        "kneeKL224/{train,val,test}/{0,1,2,3,4}/*.png (224×224 grey)",
        "Mendeley Data doi:10.17632/56rmx5bjcr.1 (kneeKL224/), or the Kaggle mirror "
        "'Knee Osteoarthritis Dataset with Severity Grading'",
        class_tree((Split(("train",), (2286, 1046, 1516, 757, 173)), Split(("val",), (328, 153, 212, 106, 27)),
                    Split(("test",), (639, 296, 447, 223, 51))), ("0", "1", "2", "3", "4"))),
    DatasetSpec(
        "in9_train", ("cfaug",), "bg_challenge/train",
        "bg_challenge/train/{original/{train,val},no_fg/train,original_bbox_cf_cagan/train}/<class>/<img>",
        "original and no_fg: Dropbox links in the github.com/MadryLab/backgrounds_challenge README; "
        "CAGAN infills: the cfaug authors' Google-Drive tarball (cfaug C-16)",
        class_tree((Split(("original/train",), (5045,) * 9), Split(("original/val",)), Split(("no_fg/train",)),
                    Split(("original_bbox_cf_cagan/train",))), in9.CLASSES)),
    DatasetSpec(
        "in9l", ("cfaug", "masktune"), "bg_challenge/train/in9l",
        "bg_challenge/train/in9l/{train,val}/<class>/<img>",
        "in9l from the github.com/MadryLab/backgrounds_challenge README (Dropbox links reported dead: "
        "supply a copy)",
        class_tree((Split(("train",)), Split(("val",))), in9.CLASSES)),
    DatasetSpec(
        "bg_challenge_test", ("cfaug", "masktune"), "bg_challenge/test",
        "bg_challenge/test/<variant>/val/<class>/<img> (+ fg_mask/val/<class>/*.npy)",
        "backgrounds_challenge_data.tar.gz from the GitHub releases of MadryLab/backgrounds_challenge; "
        "untar it into bg_challenge/test/",
        class_tree(tuple(Split((f"{v}/val",), (450,) * 9) for v in _IN9_TEST)
                   + tuple(Split((f"{v}/val",)) for v in ("only_fg", "no_fg", "only_bg_b", "only_bg_t"))
                   + (Split(("fg_mask/val",), suffixes=(".npy",)),), in9.CLASSES)),
    DatasetSpec(
        "waterbirds", ("cfaug",), "waterbird",
        "waterbird/{waterbird_complete95_forest2water2/{metadata.csv,<species>/*.jpg}, "
        "segmentations/<species>/*.png, cagan/<species>/*.jpg}",
        "https://nlp.stanford.edu/data/dro/waterbird_complete95_forest2water2.tar.gz into waterbird/; CUB "
        "segmentations and CAGAN infills from the cfaug authors' Google-Drive files (cfaug C-16)",
        waterbirds.probe("waterbird_complete95_forest2water2", (("segmentations", ".png"), ("cagan", ".jpg")), False)),
    DatasetSpec(
        "waterbirds_corrected", ("masktune",), "waterbird_corrected",
        "waterbird_corrected/{metadata.csv, <species>/*.jpg} (MaskTune's corrected release)",
        "the corrected Waterbirds from the aliasgharkhani/Masktune README (Google Drive id "
        "1xPNYQskEXuPhuqT5Hj4hXPeJa9jh7liL); unpack so metadata.csv is at waterbird_corrected/metadata.csv",
        waterbirds.probe("", (), True)),
    DatasetSpec(
        "cct", ("cfaug",), "cct",
        "cct/{eccv_18_all_images_sm/<id>.jpg, eccv_18_annotation_files/<split>_annotations.json, cagan/<id>.jpg}",
        "https://lila.science/datasets/caltech-camera-traps: eccv_18_all_images_sm.tar.gz and "
        "eccv_18_annotations.tar.gz untarred into cct/; CAGAN infills from the cfaug authors (C-16)",
        _cct),
    DatasetSpec(
        "celeba", ("masktune",), "celeba",
        "celeba/{list_attr_celeba.csv, list_eval_partition.csv, img_align_celeba/<id>.jpg}",
        "kaggle datasets download -d jessicali9530/celeba-dataset (unzip into celeba/)",
        celeba.probe),
    DatasetSpec(
        "cifar10", ("masktune",), "cifar-10-batches-py",
        "cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}",
        "torchvision.datasets.CIFAR10(root=<data root>, download=True)",
        cifar10.probe),
    DatasetSpec(
        "svhn", ("masktune",), "svhn",
        "svhn/{train_32x32.mat, test_32x32.mat}",
        "torchvision.datasets.SVHN(root=<data root>/svhn, split='train' and 'test', download=True)",
        svhn.probe),
    DatasetSpec(
        "dogs_vs_cats", ("masktune",), "dogs-vs-cats",
        "dogs-vs-cats/train/{cat,dog}.<n>.jpg (Kaggle train.zip)",
        "kaggle competitions download -c dogs-vs-cats; unzip train.zip into dogs-vs-cats/",
        cats_dogs.probe),
)

_BY_NAME = {spec.name: spec for spec in DATASETS}


def dataset(name: str) -> DatasetSpec:
    """The registered dataset called `name`."""
    if name not in _BY_NAME:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(_BY_NAME)}")
    return _BY_NAME[name]
