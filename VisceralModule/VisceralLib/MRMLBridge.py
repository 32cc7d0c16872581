"""Qt-free bridge between MRML nodes and the pure-logic package ``visceral``.

Runs inside 3D Slicer and on the bare MRML library of the ``slicer-core`` package (tests).
Every exchange of voxels goes through world coordinates, because Slicer's IJK is not always the
file's: for a left-handed NIfTI grid Slicer reverses the k axis (found on slicer-core 5.13,
``Testing/test_frames.py``).  Annotations are therefore written on the *file* grid of their image
(read from the image file) and re-indexed from Slicer's grid with
:meth:`visceral.conventions.frames.ImageGeometry.array_from`.

Traps handled here (measured on slicer-core 5.13, shared/reference/slicer-core-headless.md):

- ``ExportSegmentsToLabelmapNode`` writes signed 16-bit labels, clamping RadLex IDs above 32767
  (rectus abdominis 40357/40358).  The bridge exports each segment alone as a 0/1 mask and takes
  label values from the registry, so nothing is clamped.
- ``.mrk.json`` stores control points in LPS but a per-point measurement verbatim.  The bridge keeps
  the covariance measurement in Slicer's world frame (RAS) and says so in the measurement.
- Per-point measurement values do not follow point insertion or removal: they are rebuilt from
  the points whenever the bridge writes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import slicer
import vtk
from vtk.util.numpy_support import numpy_to_vtk, vtk_to_numpy

from visceral.annotations import export_landmarks, export_region_annotation, export_uncertainty_volumes, import_landmarks
from visceral.annotations.regions import read_region_annotation
from visceral.conventions.frames import ImageGeometry
from visceral.conventions.labels import Structure, StructureRegistry, default_registry
from visceral.conventions.landmarks import read_landmarks, write_landmarks
from visceral.conventions.names import FileKind, VisceralName, parse_name
from visceral.errors import InvalidNameError, VisceralError
from visceral.imageio import read_geometry

#: Node attributes the import sets and the exports read.
ATTRIBUTE_SUBJECT = "Visceral.Subject"
ATTRIBUTE_ACQUISITION = "Visceral.Acquisition"
ATTRIBUTE_MODALITY = "Visceral.Modality"
ATTRIBUTE_FILE = "Visceral.File"
#: Name, units and description of the per-control-point covariance measurement.
COVARIANCE_MEASUREMENT = "covariance"
COVARIANCE_UNITS = "mm2"
COVARIANCE_DESCRIPTION = "3x3 position covariance, row-major c11..c33, in the world frame RAS"


# -- volumes -------------------------------------------------------------------------------------------


def matrixToNumpy(matrix: vtk.vtkMatrix4x4) -> np.ndarray:
    """A ``vtkMatrix4x4`` as a 4x4 array."""
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def geometryFromVolumeNode(volumeNode) -> ImageGeometry:
    """The grid of a volume node as Slicer indexes it (IJKToRAS and dimensions)."""
    m = vtk.vtkMatrix4x4()
    volumeNode.GetIJKToRASMatrix(m)
    return ImageGeometry.from_ijk_to_ras(matrixToNumpy(m), volumeNode.GetImageData().GetDimensions())


def arrayFromVolumeNode(volumeNode) -> np.ndarray:
    """Voxels ``[k, j, i]`` of a scalar volume node (a copy)."""
    image = volumeNode.GetImageData()
    dims = image.GetDimensions()
    return vtk_to_numpy(image.GetPointData().GetScalars()).reshape(dims[::-1]).copy()


def fileGeometry(volumeNode) -> ImageGeometry:
    """The grid of the file a volume node was loaded from (its :data:`ATTRIBUTE_FILE` or storage
    node), else the node's own grid."""
    path = volumeNode.GetAttribute(ATTRIBUTE_FILE)
    storage = volumeNode.GetStorageNode()
    if not path and storage is not None:
        path = storage.GetFileName()
    if path and Path(path).is_file() and path.endswith((".nii", ".nii.gz")):
        return read_geometry(path)
    return geometryFromVolumeNode(volumeNode)


def loadVolume(scene, path: str) -> "slicer.vtkMRMLScalarVolumeNode":
    """Load a data-set image into ``scene``, named by the conventions, with its tokens as attributes."""
    name = parse_name(Path(path).name)
    node = slicer.vtkMRMLScalarVolumeNode()
    node.SetName(name.image().format().replace(".nii.gz", ""))
    scene.AddNode(node)
    storage = slicer.vtkMRMLVolumeArchetypeStorageNode()
    scene.AddNode(storage)
    storage.SetFileName(str(path))
    if not storage.ReadData(node):
        scene.RemoveNode(node)
        scene.RemoveNode(storage)
        raise VisceralError(f"{path}: Slicer could not read the volume")
    node.SetAndObserveStorageNodeID(storage.GetID())
    setVolumeTokens(node, name, str(path))
    return node


def setVolumeTokens(node, name: VisceralName, path: str = "") -> None:
    """Keep subject, acquisition, modality (and the file) on the node for the exports."""
    node.SetAttribute(ATTRIBUTE_SUBJECT, str(name.subject))
    node.SetAttribute(ATTRIBUTE_ACQUISITION, str(name.acquisition))
    node.SetAttribute(ATTRIBUTE_MODALITY, name.modality or "")
    if path:
        node.SetAttribute(ATTRIBUTE_FILE, path)


def volumeTokens(node) -> Optional[VisceralName]:
    """The image name of a node loaded by :func:`loadVolume` (``None`` when it has no tokens)."""
    subject, acquisition = node.GetAttribute(ATTRIBUTE_SUBJECT), node.GetAttribute(ATTRIBUTE_ACQUISITION)
    if not subject or not acquisition:
        try:
            return parse_name(node.GetName() + ".nii.gz")
        except InvalidNameError:
            return None
    return VisceralName(int(subject), int(acquisition), node.GetAttribute(ATTRIBUTE_MODALITY) or None)


# -- segmentations -------------------------------------------------------------------------------------


@dataclass
class SegmentMapping:
    """Segment IDs mapped to registry structures, and the segments that map to none."""

    structures: Dict[str, Structure] = field(default_factory=dict)  # segment ID -> structure
    unknown: List[Tuple[str, str]] = field(default_factory=list)  # (segment ID, segment name)


def _terminology(segment) -> str:
    if hasattr(segment, "GetTerminology"):
        return segment.GetTerminology() or ""
    tag = vtk.mutable("")
    segment.GetTag("TerminologyEntry", tag)
    return str(tag)


def mapSegments(segmentationNode, registry: Optional[StructureRegistry] = None) -> SegmentMapping:
    """Map each segment to a structure: by its terminology entry (SNOMED CT type and modifier),
    else by its name (registry names and synonyms)."""
    registry = registry or default_registry()
    segmentation = segmentationNode.GetSegmentation()
    mapping = SegmentMapping()
    for index in range(segmentation.GetNumberOfSegments()):
        segment_id = segmentation.GetNthSegmentID(index)
        segment = segmentation.GetSegment(segment_id)
        structure = None
        entry = _terminology(segment)
        if entry:
            try:
                structure = registry.from_slicer_terminology(entry)
            except VisceralError:
                structure = None
        if structure is None:
            try:
                structure = registry.lookup(segment.GetName())
            except VisceralError:
                mapping.unknown.append((segment_id, segment.GetName()))
                continue
        mapping.structures[segment_id] = structure
    return mapping


def segmentMasks(segmentationNode, segmentIDs: Sequence[str], referenceVolumeNode) -> Tuple[Dict[str, np.ndarray], Dict[str, int]]:
    """Binary masks ``[k, j, i]`` of segments on the reference volume's grid (Slicer's indexing),
    and for each segment the number of its voxels outside that grid.

    Each segment is exported alone (values 0/1) so Slicer's int16 label export cannot clamp anything.
    """
    logic = slicer.vtkSlicerSegmentationsModuleLogic
    scene = segmentationNode.GetScene()
    reference = geometryFromVolumeNode(referenceVolumeNode)
    masks: Dict[str, np.ndarray] = {}
    outside: Dict[str, int] = {}
    for segment_id in segmentIDs:
        ids = vtk.vtkStringArray()
        ids.InsertNextValue(segment_id)
        labelmap = slicer.vtkMRMLLabelMapVolumeNode()
        scene.AddNode(labelmap)
        try:
            if not logic.ExportSegmentsToLabelmapNode(segmentationNode, ids, labelmap, referenceVolumeNode, slicer.vtkSegmentation.EXTENT_REFERENCE_GEOMETRY):
                raise VisceralError(f"Slicer could not export segment {segment_id}")
            masks[segment_id] = arrayFromVolumeNode(labelmap) != 0
        finally:
            scene.RemoveNode(labelmap)
        outside[segment_id] = _voxelsOutside(segmentationNode, segment_id, reference)
    return masks, outside


def _voxelsOutside(segmentationNode, segmentID: str, reference: ImageGeometry) -> int:
    """Voxels of a segment (its own labelmap, any lattice) whose centres lie outside the reference grid."""
    image = slicer.vtkOrientedImageData()
    segmentationNode.GetBinaryLabelmapRepresentation(segmentID, image)
    extent = image.GetExtent()
    if extent[1] < extent[0] or image.GetPointData().GetScalars() is None:
        return 0
    dims = image.GetDimensions()
    values = vtk_to_numpy(image.GetPointData().GetScalars()).reshape(dims[::-1])
    k, j, i = np.nonzero(values)
    if k.size == 0:
        return 0
    ijk = np.column_stack([i + extent[0], j + extent[2], k + extent[4]]).astype(float)
    m = vtk.vtkMatrix4x4()
    image.GetImageToWorldMatrix(m)
    world = ijk @ matrixToNumpy(m)[:3, :3].T + matrixToNumpy(m)[:3, 3]
    return int(np.count_nonzero(~reference.contains_index(reference.world_to_index(world, "RAS"), 0.5)))


@dataclass
class SegmentationExport:
    """What an export wrote."""

    files: List[str]
    labels: Dict[str, int]


def exportSegmentation(
    segmentationNode,
    referenceVolumeNode,
    folder: str,
    annotation: VisceralName,
    uncertainty: bool = False,
    overwrite: bool = False,
    registry: Optional[StructureRegistry] = None,
) -> SegmentationExport:
    """Write a segmentation as a VISCERAL region annotation of its reference image.

    Multi-label NIfTI + label table CSV, or (``uncertainty``) one 0/1 float volume per structure.
    Label values come from the registry, never from segment order.  Refused (nothing written):
    unknown segments, segments reaching outside the reference volume, overlapping segments (for a
    label volume), existing files unless ``overwrite``.
    """
    registry = registry or default_registry()
    if annotation.kind not in (FileKind.REGION, FileKind.REGION_LABEL) or annotation.annotator is None:
        raise VisceralError("the annotation name must be a region annotation with an annotator")
    mapping = mapSegments(segmentationNode, registry)
    if mapping.unknown:
        names = ", ".join(repr(n) for _, n in mapping.unknown)
        raise VisceralError(f"segments with no RadLex structure (rename them or set their terminology): {names}")
    if not mapping.structures:
        raise VisceralError("the segmentation has no segments")
    masks, outside = segmentMasks(segmentationNode, list(mapping.structures), referenceVolumeNode)
    beyond = {mapping.structures[s].name: n for s, n in outside.items() if n > 0}
    if beyond:
        details = "; ".join(f"{name}: {n} voxels" for name, n in beyond.items())
        raise VisceralError(f"segments reach outside the reference volume ({details}); crop them in the Segment Editor first")
    slicer_grid = geometryFromVolumeNode(referenceVolumeNode)
    file_grid = fileGeometry(referenceVolumeNode)
    by_structure = {mapping.structures[s].name: file_grid.array_from(m, slicer_grid) for s, m in masks.items()}
    folder_path = Path(folder)
    base = annotation.annotation(FileKind.REGION)
    if uncertainty:
        targets = [folder_path / base.with_label(registry.lookup(n).radlex_id).format() for n in by_structure]
    else:
        targets = [folder_path / base.format(), folder_path / base.with_extension(".csv").format()]
    existing = [str(t) for t in targets if t.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"would overwrite {', '.join(existing)}")
    folder_path.mkdir(parents=True, exist_ok=True)
    if uncertainty:
        written = export_uncertainty_volumes(by_structure, file_grid, base, folder_path, registry)
        return SegmentationExport([str(p) for p in written.values()], {n: registry.lookup(n).radlex_id for n in written})
    table = export_region_annotation(by_structure, file_grid, folder_path / base.format(), registry)
    return SegmentationExport([str(t) for t in targets], table.as_dict())


def importRegionAnnotation(scene, path: str, referenceVolumeNode, registry: Optional[StructureRegistry] = None):
    """Load a multi-label region annotation (+ its CSV) as a segmentation node on its reference image.

    Segments are named by structure, carry their Slicer terminology entry and keep their label value.
    """
    registry = registry or default_registry()
    annotation = read_region_annotation(path, reference=fileGeometry(referenceVolumeNode))
    slicer_grid = geometryFromVolumeNode(referenceVolumeNode)
    labels = slicer_grid.array_from(annotation.labels, annotation.geometry)
    labelmap = slicer.vtkMRMLLabelMapVolumeNode()
    scene.AddNode(labelmap)
    segmentation = slicer.vtkMRMLSegmentationNode()
    segmentation.SetName(Path(path).name.split(".nii")[0])
    scene.AddNode(segmentation)
    try:
        image = vtk.vtkImageData()
        image.SetDimensions(*slicer_grid.shape)
        image.GetPointData().SetScalars(numpy_to_vtk(np.ascontiguousarray(labels.astype(np.uint16)).ravel(), deep=True))
        labelmap.SetAndObserveImageData(image)
        m = vtk.vtkMatrix4x4()
        referenceVolumeNode.GetIJKToRASMatrix(m)
        labelmap.SetIJKToRASMatrix(m)
        segmentation.SetReferenceImageGeometryParameterFromVolumeNode(referenceVolumeNode)
        if not slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(labelmap, segmentation):
            raise VisceralError(f"{path}: Slicer could not import the label volume")
    finally:
        scene.RemoveNode(labelmap)
    names = {value: name for name, value in annotation.table.entries}
    seg = segmentation.GetSegmentation()
    for index in range(seg.GetNumberOfSegments()):
        segment = seg.GetSegment(seg.GetNthSegmentID(index))
        name = names.get(segment.GetLabelValue())
        if name is None:
            continue
        segment.SetName(name)
        try:
            entry = registry.lookup(name).slicer_terminology()
            if hasattr(segment, "SetTerminology"):
                segment.SetTerminology(entry)
            else:
                segment.SetTag("TerminologyEntry", entry)
        except VisceralError:
            pass
    return segmentation


# -- markups -------------------------------------------------------------------------------------------


def markupsCovariances(markupsNode) -> List[Optional[np.ndarray]]:
    """Per control point its 3x3 covariance (RAS, mm^2) from the ``covariance`` measurement, or ``None``."""
    count = markupsNode.GetNumberOfControlPoints()
    for index in range(markupsNode.GetNumberOfMeasurements()):
        measurement = markupsNode.GetNthMeasurement(index)
        if measurement.GetName() != COVARIANCE_MEASUREMENT:
            continue
        values = measurement.GetControlPointValues()
        if values is None or values.GetNumberOfComponents() != 9:
            raise VisceralError("the 'covariance' measurement must have 9 components per control point")
        if values.GetNumberOfTuples() != count:
            raise VisceralError(f"the 'covariance' measurement has {values.GetNumberOfTuples()} values for {count} control points "
                                "(points were added or removed after it was set)")
        array = vtk_to_numpy(values).reshape(count, 3, 3)
        return [None if not np.all(np.isfinite(c)) else c.copy() for c in array]
    return [None] * count


def setMarkupsCovariances(markupsNode, covariances: Sequence[Optional[np.ndarray]]) -> None:
    """Store per-point covariances (RAS, mm^2) as the ``covariance`` measurement; ``None`` -> NaN."""
    count = markupsNode.GetNumberOfControlPoints()
    if len(covariances) != count:
        raise VisceralError(f"{len(covariances)} covariances for {count} control points")
    for index in reversed(range(markupsNode.GetNumberOfMeasurements())):
        if markupsNode.GetNthMeasurement(index).GetName() == COVARIANCE_MEASUREMENT:
            markupsNode.RemoveNthMeasurement(index)
    values = np.full((count, 9), np.nan)
    for n, cov in enumerate(covariances):
        if cov is not None:
            values[n] = np.asarray(cov, dtype=float).reshape(9)
    array = numpy_to_vtk(values, deep=True)
    array.SetNumberOfComponents(9)
    measurement = slicer.vtkMRMLStaticMeasurement()
    measurement.SetName(COVARIANCE_MEASUREMENT)
    measurement.SetUnits(COVARIANCE_UNITS)
    measurement.SetDescription(COVARIANCE_DESCRIPTION)
    measurement.SetControlPointValues(array)
    markupsNode.AddMeasurement(measurement)


def landmarkIdOf(label: str) -> int:
    """The landmark ID of a control point label: its number (``"321"``, ``"L321"``, ``"321 apex"``)."""
    digits = "".join(ch if ch.isdigit() else " " for ch in label).split()
    if not digits:
        raise VisceralError(f"control point {label!r} has no landmark ID (name points by their numeric ID)")
    return int(digits[0])


def exportMarkups(markupsNode, referenceVolumeNode, path: str, overwrite: bool = False) -> int:
    """Write a point list as a landmark CSV in the seed's frame of the reference image's file grid.

    Positions are taken in world RAS (parent transforms applied); covariances from the
    ``covariance`` measurement (RAS).  Returns the number of landmarks.
    """
    if Path(path).exists() and not overwrite:
        raise FileExistsError(f"would overwrite {path}")
    count = markupsNode.GetNumberOfControlPoints()
    ids = [landmarkIdOf(markupsNode.GetNthControlPointLabel(n)) for n in range(count)]
    points = np.array([markupsNode.GetNthControlPointPositionWorld(n) for n in range(count)], dtype=float).reshape(-1, 3)
    landmarks = export_landmarks(ids, points, "RAS", fileGeometry(referenceVolumeNode), markupsCovariances(markupsNode))
    write_landmarks(path, landmarks)
    return len(landmarks)


def importLandmarks(scene, path: str, referenceVolumeNode):
    """Load a landmark CSV as a point list on its reference image (labels = IDs, covariance measurement)."""
    ids, points, covariances = import_landmarks(read_landmarks(path), fileGeometry(referenceVolumeNode), "RAS")
    node = slicer.vtkMRMLMarkupsFiducialNode()
    node.SetName(Path(path).stem)
    scene.AddNode(node)
    for landmark_id, point in zip(ids, points):
        node.AddControlPoint(vtk.vtkVector3d(*point), str(landmark_id))
    if any(c is not None for c in covariances):
        setMarkupsCovariances(node, covariances)
    return node
