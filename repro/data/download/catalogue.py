"""The entries: every dataset of `repro data check` (`repro.data.catalog.DATASETS`) and every pretrained weight file,
with mirrors and the checksums the well-known loaders publish (the source of each is given beside it). Where no
checksum is published the source is unpinned: the sha256 of what was fetched is recorded in the marker."""

from __future__ import annotations

from repro.data.download.entries import Entry, Source
from repro.errors import UserError

MB, GB = 2**20, 2**30

# torchvision.datasets.MNIST.mirrors / .resources (md5); sizes as published on the mirrors
_MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
_MNIST = (("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873", 9_912_422),
          ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432", 28_881),
          ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3", 1_648_877),
          ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c", 4_542))

# monai.apps.datasets.DecathlonDataset.resource / .md5 (Project-MONAI/MONAI, monai/apps/datasets.py)
_MSD = (("msd_heart", "Task02_Heart", "06ee59366e1e5124267b774dbd654057", 435 * MB),
        ("msd_liver", "Task03_Liver", "a90ec6c4aa7f6a3d087205e23d4e6397", 27 * GB),
        ("msd_pancreas", "Task07_Pancreas", "4f7080cfca169fa8066d17ce6eb061e4", 11 * GB))

# The cfaug authors' download scripts (zzzace2000/robust_cls_model, datasets/fetch_{in9,waterbird,cct}.sh): Dropbox
# links of the MadryLab/backgrounds_challenge README and the authors' Google-Drive files; no checksums published.
_DROPBOX = "https://www.dropbox.com/s/{}/{}?dl=1"
_DRIVE = "https://drive.usercontent.google.com/download?id={}&export=download&confirm=t"
_LILA = ("https://storage.googleapis.com/public-datasets-lila/caltechcameratraps/",
         "https://lilablobssc.blob.core.windows.net/caltechcameratraps/")
_SRH = "b41774dea47a4857f8dd39dbe4cc95f49ffa8f5a"  # a commit of josephdviviano/saliency-red-herring (the actdiff code)


def _drive(file: str, drive_id: str, member: str) -> Source:
    return Source(file, (_DRIVE.format(drive_id),), unpack="archive", member=member, dest=member, drive_id=drive_id)


def _dropbox(key: str, member: str, dest: str) -> Source:
    return Source(f"{member}.tar.gz", (_DROPBOX.format(key, f"{member}.tar.gz"),), unpack="archive", member=member,
                  dest=dest)


def _torchvision(name: str, file: str, megabytes: float) -> Entry:
    """torchvision's IMAGENET1K_V1 weights: torch.hub checks the sha256 prefix that the file name carries."""
    prefix = file.rsplit("-", 1)[1].split(".")[0]
    return Entry(name, (Source(file, (f"https://download.pytorch.org/models/{file}",), f"sha256-prefix:{prefix}",
                                approx=int(megabytes * MB), dest=file),), weights="hub", weight_papers=("tap",))


ENTRIES: tuple[Entry, ...] = (
    Entry("actdiff_synth", (Source(
        "saliency-red-herring.tar.gz", (f"https://codeload.github.com/josephdviviano/saliency-red-herring/tar.gz/{_SRH}",),
        unpack="archive", member=f"saliency-red-herring-{_SRH}/data/synth2"),)),
    *(Entry(name, (Source(f"{task}.tar", (f"https://msd-for-monai.s3-us-west-2.amazonaws.com/{task}.tar",),
                          f"md5:{md5}", approx=approx, unpack="archive", member=task),))
      for name, task, md5, approx in _MSD),
    Entry("nih_cxr14", (Source("ChestX-ray14", approx=45 * GB),)),  # 12 archives of 1024-px PNGs, resized by the user
    Entry("padchest", (Source("PadChest", approx=1000 * GB),)),  # BIMCV, after registration
    Entry("mnist", tuple(Source(file, tuple(m + file for m in _MNIST_MIRRORS), f"md5:{md5}", size, dest=f"raw/{file}")
                         for file, md5, size in _MNIST)),
    Entry("chest_xray", (Source("chest-xray-pneumonia.zip", unpack="archive", member="chest_xray", approx=2 * GB,
                                kaggle="datasets/paultimothymooney/chest-xray-pneumonia"),)),
    Entry("knee_kl224", (Source("knee-osteoarthritis-dataset-with-severity.zip", unpack="archive", approx=200 * MB,
                                kaggle="datasets/shashwatwork/knee-osteoarthritis-dataset-with-severity"),)),
    Entry("in9_train", (_dropbox("0vv2qsc4ywb4z5v", "original", "original"),
                        _dropbox("0v6w9k7q7i1ytvr", "no_fg", "no_fg"),
                        _drive("original_bbox_cf_cagan.tar.gz", "1kiBz3E8bFTPn_S9-jshtu3jjqMGReCvK",
                               "original_bbox_cf_cagan"))),
    Entry("in9l", (_dropbox("8w29bg9niya19rn", "in9l", ""),)),
    Entry("bg_challenge_test", (Source(
        "backgrounds_challenge_data.tar.gz",
        ("https://github.com/MadryLab/backgrounds_challenge/releases/download/data/backgrounds_challenge_data.tar.gz",),
        unpack="archive", member="bg_challenge"),)),
    Entry("waterbirds", (Source("waterbird_complete95_forest2water2.tar.gz",
                                ("https://nlp.stanford.edu/data/dro/waterbird_complete95_forest2water2.tar.gz",),
                                unpack="archive", member="waterbird_complete95_forest2water2",
                                dest="waterbird_complete95_forest2water2"),
                         _drive("waterbird_segmentations.tar.gz", "1EU6jUDf8tg4cIAJiv8lSEsfQhPe9rCwt", "segmentations"),
                         _drive("waterbird_cagan.tar.gz", "1MZQ6IAYmwnUfaIU8KLeh6ZlLb6VS5Awk", "cagan"))),
    # the MaskTune README's Google-Drive file; unpacked so that metadata.csv is at waterbird_corrected/metadata.csv
    Entry("waterbirds_corrected", (Source("waterbird_corrected", (_DRIVE.format("1xPNYQskEXuPhuqT5Hj4hXPeJa9jh7liL"),),
                                          unpack="archive", member=None,
                                          drive_id="1xPNYQskEXuPhuqT5Hj4hXPeJa9jh7liL"),)),
    Entry("cct", (Source("eccv_18_all_images_sm.tar.gz", tuple(u + "eccv_18_all_images_sm.tar.gz" for u in _LILA),
                         approx=6_492_615_601, unpack="archive", member="eccv_18_all_images_sm",
                         dest="eccv_18_all_images_sm"),
                  Source("eccv_18_annotations.tar.gz", tuple(u + "eccv_18_annotations.tar.gz" for u in _LILA),
                         approx=2_997_071, unpack="archive", member="eccv_18_annotation_files",
                         dest="eccv_18_annotation_files"),
                  _drive("cct_cagan.tar.gz", "1N3xGwYAU-TXexSq2riYJaXWJHtUxmOGU", "cagan"))),
    Entry("celeba", (Source("celeba-dataset.zip", unpack="archive", approx=1400 * MB,
                            kaggle="datasets/jessicali9530/celeba-dataset"),)),
    # torchvision.datasets.CIFAR10.url / .tgz_md5; the tarball holds 5 data batches, test_batch, batches.meta and
    # readme.html
    Entry("cifar10", (Source("cifar-10-python.tar.gz", ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
                             "md5:c58f30108f718f92721af3b95e74349a", 170_498_071, unpack="archive",
                             member="cifar-10-batches-py", files=8),)),
    # torchvision.datasets.SVHN.split_list (md5)
    Entry("svhn", (Source("train_32x32.mat", ("http://ufldl.stanford.edu/housenumbers/train_32x32.mat",),
                          "md5:e26dedcc434d2e4c54c9b2d4a06d8373", 182_040_794, dest="train_32x32.mat"),
                   Source("test_32x32.mat", ("http://ufldl.stanford.edu/housenumbers/test_32x32.mat",),
                          "md5:eb5a983be6a315427106f1b164d9cef3", 64_275_384, dest="test_32x32.mat"))),
    # the competition's rules must be accepted in a browser first; train.zip holds train/{cat,dog}.<n>.jpg
    Entry("dogs_vs_cats", (Source("train.zip", unpack="archive", member="train", dest="train", files=25_000,
                                  approx=543 * MB, kaggle="competitions/dogs-vs-cats/train.zip"),)),
    # torchvision.models.{VGG16,ResNet18,DenseNet121}_Weights.IMAGENET1K_V1 (url; meta "_file_size" in MB)
    _torchvision("vgg16_imagenet", "vgg16-397923af.pth", 527.796),
    _torchvision("resnet18_imagenet", "resnet18-f37072fd.pth", 44.661),
    _torchvision("densenet121_imagenet", "densenet121-a639ec97.pth", 30.845),
    # timm's resnet50.ram_in1k pretrained cfg (url; the sha256 prefix is in the file name); MaskTune's loader reads
    # it from $REPRO_WEIGHTS or torch.hub's checkpoints folder
    Entry("resnet50_ram", (Source("resnet50_ram-a26f946b.pth", (
        "https://github.com/huggingface/pytorch-image-models/releases/download/v0.1-weights/resnet50_ram-a26f946b.pth",
        "https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/resnet50_ram-a26f946b.pth"),
        "sha256-prefix:a26f946b", approx=98 * MB, dest="resnet50_ram-a26f946b.pth"),), weights="repro-weights",
        weight_papers=("masktune",)),
    # google-research/big_transfer's bucket; no checksum published (unpinned)
    Entry("bit_s_r50x1", (Source("BiT-S-R50x1.npz", ("https://storage.googleapis.com/bit_models/BiT-S-R50x1.npz",),
                                 dest="BiT-S-R50x1.npz"),), weights="data-root", weight_papers=("cfaug",)),
)

_BY_NAME = {e.name: e for e in ENTRIES}


def entry(name: str) -> Entry:
    """The catalogue entry called `name`."""
    if name not in _BY_NAME:
        raise UserError(f"unknown download entry {name!r}; known: {', '.join(_BY_NAME)}, a paper, or all")
    return _BY_NAME[name]


def select(what: str) -> list[Entry]:
    """The entries `what` names: one entry, every entry a paper uses, or all."""
    if what == "all":
        return list(ENTRIES)
    papered = [e for e in ENTRIES if what in e.papers]
    return papered or [entry(what)]
