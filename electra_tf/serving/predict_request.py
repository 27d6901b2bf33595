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

REQUEST_KEYS = ("signature_name", "instances", "inputs")


def parse_predict_request(body, input_names, max_instances=None, max_text_length=None):
    """Validates a predict request and returns its instances as columns.

    Args:
        body: the decoded JSON body.
        input_names: the signature's input names, sorted.
        max_instances: most instances allowed in one request (None: no limit).
        max_text_length: most characters allowed in one text (None: no limit).

    Returns:
        (columns, row_format): columns is {input name: list of str}, each of
        the request's number of instances; row_format is True for "instances".

    Raises:
        ValueError: with a message naming what is wrong; the service answers 400.

    >>> parse_predict_request({"instances": ["good", {"b64": "YmFk"}]}, ["text"])
    ({'text': ['good', 'bad']}, True)
    >>> parse_predict_request({"inputs": {"question": ["Who?"], "context": ["Me."]}},
    ...                       ["context", "question"])
    ({'context': ['Me.'], 'question': ['Who?']}, False)
    """
    if not isinstance(body, dict):
        raise ValueError(
            f"The request body must be a JSON object such as {{\"instances\": [...]}}; received "
            f"a JSON {_json_type(body)}."
        )
    unknown = sorted(set(body) - set(REQUEST_KEYS))
    if unknown:
        raise ValueError(
            f"Unknown key(s) {unknown} in the request; expected 'instances' or 'inputs' "
            "and optionally 'signature_name'."
        )
    if ("instances" in body) == ("inputs" in body):
        raise ValueError(
            "The request must have exactly one of 'instances' (row format) or 'inputs' "
            f"(columnar format); received keys {sorted(body)}."
        )
    if "instances" in body:
        columns, row_format = _parse_rows(body["instances"], input_names), True
    else:
        columns, row_format = _parse_columns(body["inputs"], input_names), False
    count = len(next(iter(columns.values())))
    if max_instances is not None and count > max_instances:
        raise ValueError(
            f"The request has {count} instances; at most {max_instances} are allowed per "
            "request (--max-instances). Split it into smaller requests."
        )
    for name, values in columns.items():
        for index, text in enumerate(values):
            if not text.strip():
                raise ValueError(f"Instance {index}: input {name!r} is empty; send some text.")
            if max_text_length is not None and len(text) > max_text_length:
                raise ValueError(
                    f"Instance {index}: input {name!r} has {len(text)} characters; at most "
                    f"{max_text_length} are allowed (--max-text-length)."
                )
    return columns, row_format


def _parse_rows(instances, input_names):
    if not isinstance(instances, list) or not instances:
        raise ValueError(
            "'instances' must be a non-empty JSON list; received "
            + ("an empty list." if instances == [] else f"a JSON {_json_type(instances)}.")
        )
    columns = {name: [] for name in input_names}
    for index, row in enumerate(instances):
        if isinstance(row, dict) and "b64" not in row:
            if sorted(row) != list(input_names):
                raise ValueError(
                    f"Instance {index} has keys {sorted(row)}; expected exactly "
                    f"{list(input_names)}."
                )
            for name in input_names:
                columns[name].append(_text(row[name], f"Instance {index}, input {name!r}"))
        elif len(input_names) == 1:
            columns[input_names[0]].append(_text(row, f"Instance {index}"))
        else:
            raise ValueError(
                f"Instance {index} is a JSON {_json_type(row)}; this signature has several "
                f"inputs, so each instance must be an object with keys {list(input_names)}."
            )
    return columns


def _parse_columns(inputs, input_names):
    if isinstance(inputs, list) and len(input_names) == 1:
        inputs = {input_names[0]: inputs}
    if not isinstance(inputs, dict):
        raise ValueError(
            f"'inputs' must be a JSON object {{name: list}} with keys {list(input_names)}"
            + (" or, for this one-input signature, a list" if len(input_names) == 1 else "")
            + f"; received a JSON {_json_type(inputs)}."
        )
    if sorted(inputs) != list(input_names):
        raise ValueError(f"'inputs' has keys {sorted(inputs)}; expected {list(input_names)}.")
    columns = {}
    for name in input_names:
        values = inputs[name]
        if not isinstance(values, list) or not values:
            raise ValueError(
                f"Input {name!r} must be a non-empty list of strings; received "
                + ("an empty list." if values == [] else f"a JSON {_json_type(values)}.")
            )
        columns[name] = [_text(value, f"Input {name!r}, item {i}")
                         for i, value in enumerate(values)]
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"All inputs must have the same number of items; received {lengths}.")
    return columns


def _text(value, where):
    if isinstance(value, dict) and sorted(value) == ["b64"] and isinstance(value["b64"], str):
        try:
            return base64.b64decode(value["b64"], validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as error:
            raise ValueError(
                f"{where}: 'b64' is not base64-encoded UTF-8 text ({error}).") from None
    if not isinstance(value, str):
        raise ValueError(
            f"{where} is a JSON {_json_type(value)}; expected a string (or {{\"b64\": ...}})."
        )
    return value


def _json_type(value):
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null",
             int: "number", float: "number"}
    return names.get(type(value), type(value).__name__)


def format_predict_response(outputs, row_format):
    """Formats {output name: array (batch, ...)} as TF Serving answers a predict request.

    Row format gives {"predictions": [...]}, one entry per instance (a bare value
    when there is one output, else an object); columnar gives {"outputs": ...}.
    Byte strings are decoded as UTF-8.

    >>> outputs = {"label": np.array([b"pos", b"neg"]), "score": np.array([0.5, 0.25])}
    >>> format_predict_response(outputs, row_format=True)
    {'predictions': [{'label': 'pos', 'score': 0.5}, {'label': 'neg', 'score': 0.25}]}
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
    if array.dtype.kind in ("S", "O"):
        return np.vectorize(_decode, otypes=[object])(array).tolist() if array.size else []
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
