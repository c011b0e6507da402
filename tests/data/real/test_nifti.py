import json

import nibabel as nib
import numpy as np
import pytest
import torch

from polymodal.data.real.nifti import NiftiPetCt, read_volume, write_mask
from polymodal.errors import DataError

AFFINE = np.diag([4.0, 3.0, 2.0, 1.0])  # x, y, z voxel sizes 4, 3, 2 mm
AFFINE[:3, 3] = (-10.0, 20.0, 5.0)


def save(path, data, affine=AFFINE):
    image = nib.Nifti1Image(np.asarray(data, dtype=np.float32), affine)
    nib.save(image, str(path))
    return path


def test_a_volume_is_read_in_d_h_w_order_with_its_spacing(tmp_path):
    data = np.arange(5 * 6 * 7, dtype=np.float32).reshape(5, 6, 7)  # (x, y, z)
    volume = read_volume(save(tmp_path / "a.nii.gz", data))
    assert volume.data.shape == (7, 6, 5)  # (z, y, x) = (D, H, W)
    assert volume.data[2, 3, 4] == data[4, 3, 2]
    np.testing.assert_allclose(volume.spacing, [2.0, 3.0, 4.0])
    np.testing.assert_allclose(volume.affine, AFFINE)


def test_a_mask_round_trips_onto_the_input_grid_with_its_affine(tmp_path):
    ct = read_volume(save(tmp_path / "ct.nii.gz", np.zeros((8, 8, 8))))
    mask = np.zeros((8, 8, 8), dtype=np.float32)
    mask[2:5, 1:3, 4:8] = 1.0  # on a grid of the input's own spacing... per axis
    # The common grid here has the input's D spacing (2 mm) on every axis, so D is kept
    # and H, W are stretched 2/3 and 2/4: write_mask undoes exactly that resampling.
    out = write_mask(tmp_path / "seg.nii.gz", mask, ct, spacing=2.0)
    back = nib.load(str(out))
    np.testing.assert_allclose(back.affine, AFFINE)
    np.testing.assert_allclose(back.header.get_zooms()[:3], (4.0, 3.0, 2.0))
    assert back.shape == (8, 8, 8) and back.get_data_dtype() == np.uint8
    assert read_volume(out).data.sum() > 0


def write_case(folder, case, ct_shape=(8, 8, 8), pet_shape=(8, 8, 8), pet_affine=AFFINE, pet=None):
    folder.mkdir(exist_ok=True)
    save(folder / f"{case}_ct.nii.gz", np.full(ct_shape, 40.0))
    save(folder / f"{case}_pet.nii.gz", np.full(pet_shape, 2.0) if pet is None else pet, pet_affine)


def test_cases_are_paired_resampled_and_scaled(tmp_path):
    write_case(tmp_path, "p1")
    seg = np.zeros((8, 8, 8))
    seg[3:5, 3:5, 3:5] = 1
    save(tmp_path / "p1_seg.nii.gz", seg)
    (tmp_path / "labels.csv").write_text("case,label\np1,1\n")
    sample = NiftiPetCt(tmp_path, size=16, spacing=2.0)[0]
    assert sample["ct"].shape == sample["pet"].shape == sample["heatmap"].shape == (16, 16, 16)
    assert torch.isclose(sample["ct"].max(), torch.tensor(0.04))  # 40 HU / 1000
    assert torch.isclose(sample["pet"].max(), torch.tensor(0.2))  # SUV 2 / 10
    assert sample["label"] == 1 and sample["heatmap"].sum() > 0
    torch.testing.assert_close(sample["ct_spacing"], torch.full((3,), 2.0))


def test_pet_in_bq_per_ml_becomes_suv_with_a_sidecar(tmp_path):
    write_case(tmp_path, "p1", pet=np.full((8, 8, 8), 5000.0))
    sidecar = {"injected_dose_bq": 350e6, "body_weight_kg": 70.0}
    (tmp_path / "p1_pet.json").write_text(json.dumps(sidecar))
    sample = NiftiPetCt(tmp_path, size=8, spacing=2.0)[0]
    suv = 5000.0 * 70_000 / 350e6  # = 1.0
    assert torch.isclose(sample["pet"].max(), torch.tensor(suv / 10))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: save(d / "p1_ct.nii.gz", np.zeros((8, 8, 8))), "has no PET file"),
        (lambda d: write_case(d, "p1", pet_shape=(8, 8, 16)), "different fields of view"),
        (lambda d: write_case(d, "p1", pet=np.full((8, 8, 8), np.nan)), "NaN"),
        (
            lambda d: (
                save(d / "p1_ct.nii.gz", np.zeros((8, 8))),
                save(d / "p1_pet.nii.gz", np.zeros((8, 8))),
            ),
            "2D image",
        ),
        (
            lambda d: (
                (d / "p1_ct.nii.gz").write_bytes(b"junk"),
                save(d / "p1_pet.nii.gz", np.zeros((8, 8, 8))),
            ),
            "not a readable NIfTI",
        ),
    ],
)
def test_bad_cases_are_one_line_errors_naming_the_problem(tmp_path, make, message):
    make(tmp_path)
    with pytest.raises(DataError, match=message) as error:
        NiftiPetCt(tmp_path, size=8, spacing=2.0)[0]
    assert "\n" not in str(error.value)


def test_an_empty_folder_says_what_it_expects(tmp_path):
    with pytest.raises(DataError, match="_ct.nii"):
        NiftiPetCt(tmp_path)
