"""Keep sentencepiece models free of the machine's paths.

sentencepiece writes its training file and model prefix into the model (`trainer_spec.input`,
`trainer_spec.model_prefix`), so the same training on another `--output` gave a model with other
bytes, and every sha256 quoting it changed. Only the file names are kept.
"""

from __future__ import annotations

from pathlib import Path


def drop_training_paths(model: Path) -> None:
    from sentencepiece import sentencepiece_model_pb2

    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(model.read_bytes())
    spec = proto.trainer_spec
    names = [Path(p).name for p in spec.input]
    del spec.input[:]
    spec.input.extend(names)
    spec.model_prefix = Path(spec.model_prefix).name
    tmp = model.with_name(model.name + ".tmp")
    tmp.write_bytes(proto.SerializeToString())
    tmp.replace(model)
