"""The fingerprint of the C sources, shared by the build script and the import-time check."""
import hashlib
from pathlib import Path


def source_files(core_dir):
    """The files whose content defines the compiled core, in a fixed order."""
    core = Path(core_dir)
    return sorted([*(core / "include").glob("*.h"), *(core / "src").glob("*.[ch]")])


def source_hash(core_dir):
    """SHA-256 over the relative names and contents of source_files(core_dir)."""
    digest = hashlib.sha256()
    core = Path(core_dir)
    for path in source_files(core):
        digest.update(path.relative_to(core).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()
