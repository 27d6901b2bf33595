"""TF Serving's predict JSON: parsing requests into columns, formatting outputs back.

The two request formats of TensorFlow Serving's REST API:
    row:      {"signature_name": "...", "instances": [row, ...]}   -> {"predictions": [...]}
    columnar: {"signature_name": "...", "inputs": {name: [...]}}  -> {"outputs": {...}}
A row is a bare value when the signature has one input, else an object
{input name: value}; `inputs` may be a bare list when there is one input.
Strings may come as {"b64": "..."} (base64 bytes), as in TF Serving.
"""

import base64
import binascii

import numpy as np

# The keys a predict body may hold; others are ignored, as TF Serving ignores them.
REQUEST_KEYS = ("signature_name", "instances", "inputs")


def parse_predict_request(body, input_names, max_instances=None, max_text_length=None):
    """Validates a predict request and returns its instances as columns of UTF-8 bytes.

    As in TF Serving: keys other than "signature_name", "instances" and
    "inputs" are ignored, and so are columnar inputs the signature does not
    have; instances are either all objects {input name: value} or all bare
    values; strings must be valid Unicode (a lone surrogate such as "\\ud800"
    is refused); {"b64": ...} bytes go to the model as they are, UTF-8 or not;
    empty texts are allowed (the model reads them as no words).

    Args:
        body: the decoded JSON body.
        input_names: the signature's input names, sorted.
        max_instances: most instances allowed in one request (None: no limit).
        max_text_length: most characters (b64: bytes) in one text (None: no limit).

    Returns:
        (columns, row_format): columns is {input name: list of bytes}, each of
        the request's number of instances; row_format is True for "instances".

    Raises:
        ValueError: with a message naming what is wrong; the service answers 400.

    >>> parse_predict_request({"instances": ["good", {"b64": "YmFk"}]}, ["text"])
    ({'text': [b'good', b'bad']}, True)
    >>> parse_predict_request({"inputs": {"question": ["Who?"], "context": ["Me."]}},
    ...                       ["context", "question"])
    ({'context': [b'Me.'], 'question': [b'Who?']}, False)
    """
    if not isinstance(body, dict):
        raise ValueError(
            f"The request body must be a JSON object such as {{\"instances\": [...]}}; received "
            f"a JSON {_json_type(body)}."
        )
    if ("instances" in body) == ("inputs" in body):
        raise ValueError(
            "The request must have exactly one of 'instances' (row format) or 'inputs' "
            f"(columnar format); received keys {_keys(body)}."
        )
    if "instances" in body:
        columns, row_format = _parse_rows(body["instances"], input_names, max_text_length), True
    else:
        columns = _parse_columns(body["inputs"], input_names, max_text_length)
        row_format = False
    count = len(next(iter(columns.values())))
    if max_instances is not None and count > max_instances:
        raise ValueError(
            f"The request has {count} instances; at most {max_instances} are allowed per "
            "request (--max-instances). Split it into smaller requests."
        )
    return columns, row_format


def _keys(mapping):
    """The keys of a JSON object, printable whatever they hold (lone surrogates too)."""
    return sorted(ascii(key)[1:-1] for key in mapping)


def _is_named_row(row):
    return isinstance(row, dict) and not (len(row) == 1 and "b64" in row)


def _parse_rows(instances, input_names, max_text_length):
    if not isinstance(instances, list) or not instances:
        raise ValueError(
            "'instances' must be a non-empty JSON list; received "
            + ("an empty list." if instances == [] else f"a JSON {_json_type(instances)}.")
        )
    named = _is_named_row(instances[0])
    columns = {name: [] for name in input_names}
    for index, row in enumerate(instances):
        if _is_named_row(row) != named:
            raise ValueError(
                f"Instance {index} is a JSON {_json_type(row)} but instance 0 is "
                + ("an object {input name: value}" if named else f"a JSON "
                   f"{_json_type(instances[0])}")
                + "; the instances of one request must all be objects {input name: value} "
                "or all bare values."
            )
        if named:
            if sorted(row) != list(input_names):
                raise ValueError(
                    f"Instance {index} has keys {_keys(row)}; expected exactly "
                    f"{list(input_names)}."
                )
            for name in input_names:
                columns[name].append(
                    _text(row[name], f"Instance {index}, input {name!r}", max_text_length))
        elif len(input_names) == 1:
            columns[input_names[0]].append(_text(row, f"Instance {index}", max_text_length))
        else:
            raise ValueError(
                f"Instance {index} is a JSON {_json_type(row)}; this signature has several "
                f"inputs, so each instance must be an object with keys {list(input_names)}."
            )
    return columns


def _parse_columns(inputs, input_names, max_text_length):
    if isinstance(inputs, list) and len(input_names) == 1:
        inputs = {input_names[0]: inputs}
    if not isinstance(inputs, dict):
        raise ValueError(
            f"'inputs' must be a JSON object {{name: list}} with keys {list(input_names)}"
            + (" or, for this one-input signature, a list" if len(input_names) == 1 else "")
            + f"; received a JSON {_json_type(inputs)}."
        )
    missing = [name for name in input_names if name not in inputs]
    if missing:
        raise ValueError(f"'inputs' lacks {missing}; this signature takes {list(input_names)} "
                         f"(received keys {_keys(inputs)}).")
    columns = {}
    for name in input_names:
        values = inputs[name]
        if not isinstance(values, list) or not values:
            raise ValueError(
                f"Input {name!r} must be a non-empty list of strings; received "
                + ("an empty list." if values == [] else f"a JSON {_json_type(values)}.")
            )
        columns[name] = [_text(value, f"Input {name!r}, item {i}", max_text_length)
                         for i, value in enumerate(values)]
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"All inputs must have the same number of items; received {lengths}.")
    return columns


def _text(value, where, max_text_length):
    """One text as UTF-8 bytes (b64: its bytes as they are), within `max_text_length`."""
    if isinstance(value, dict) and list(value) == ["b64"] and isinstance(value["b64"], str):
        try:
            data = base64.b64decode(value["b64"].encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError) as error:
            raise ValueError(f"{where}: 'b64' is not valid base64 ({error}).") from None
    elif isinstance(value, str):
        try:
            data = value.encode("utf-8")
        except UnicodeEncodeError as error:
            raise ValueError(
                f"{where} is not valid Unicode text: {error.reason} at character "
                f"{error.start} ({ascii(value[error.start:error.end])}); send UTF-8 text, "
                "or bytes as {\"b64\": ...}.") from None
    else:
        raise ValueError(
            f"{where} is a JSON {_json_type(value)}; expected a string (or {{\"b64\": ...}})."
        )
    if max_text_length is not None and len(data) > max_text_length and (
            isinstance(value, dict) or len(value) > max_text_length):
        length = len(data) if isinstance(value, dict) else len(value)
        unit = "bytes" if isinstance(value, dict) else "characters"
        raise ValueError(f"{where} has {length} {unit}; at most {max_text_length} are allowed "
                         "(--max-text-length).")
    return data


def _json_type(value):
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null",
             int: "number", float: "number"}
    return names.get(type(value), type(value).__name__)


def format_predict_response(outputs, row_format):
    """Formats {output name: array (batch, ...)} as TF Serving answers a predict request.

    Row format gives {"predictions": [...]}, one entry per instance (a bare value
    when there is one output, else an object); columnar gives {"outputs": ...}.
    Byte strings are decoded as UTF-8; floats are written in their own type's
shortest form (float32 0.1 as 0.1).

    >>> outputs = {"label": np.array([b"pos", b"neg"]),
    ...            "score": np.array([0.1, 0.25], np.float32)}
    >>> format_predict_response(outputs, row_format=True)
    {'predictions': [{'label': 'pos', 'score': 0.1}, {'label': 'neg', 'score': 0.25}]}
    >>> format_predict_response({"score": np.array([0.5])}, row_format=False)
    {'outputs': [0.5]}
    """
    values = {name: _to_json(np.asarray(array)) for name, array in sorted(outputs.items())}
    if row_format:
        if len(values) == 1:
            return {"predictions": next(iter(values.values()))}
        count = len(next(iter(values.values())))
        return {"predictions": [{name: column[i] for name, column in values.items()}
                                for i in range(count)]}
    if len(values) == 1:
        return {"outputs": next(iter(values.values()))}
    return {"outputs": values}


def _to_json(array):
    if not array.size:  # keeps the shape: a (2, 0) batch is [[], []]
        return np.zeros(array.shape).tolist()
    if array.dtype.kind in ("S", "O"):
        return np.vectorize(_decode, otypes=[object])(array).tolist()
    if array.dtype in (np.float16, np.float32):
        # Each float in its own type's shortest form, as TF Serving writes it: float32
        # 0.1 is written 0.1, not its float64 expansion 0.10000000149011612.
        return array.astype(str).astype(np.float64).tolist()
    return array.tolist()


def _decode(value):
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def split_outputs(outputs, sizes):
    """Splits batched outputs {name: (sum(sizes), ...)} into one dict per request.

    >>> parts = split_outputs({"score": np.arange(5)}, [2, 3])
    >>> [part["score"].tolist() for part in parts]
    [[0, 1], [2, 3, 4]]
    """
    offsets = np.cumsum([0] + list(sizes))
    return [{name: array[start:end] for name, array in outputs.items()}
            for start, end in zip(offsets[:-1], offsets[1:])]
