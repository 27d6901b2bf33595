"""Build an ELECTRA preset, convert it to Hugging Face format and back, and check both agree.

    python examples/convert_checkpoint.py --preset small

With transformers installed (`pip install -e ".[test]"`), the Hugging Face copy
is also run by transformers/torch and the largest difference is printed.
"""

import argparse
import tempfile

import numpy as np

import electra_tf


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small", choices=sorted(electra_tf.PRESETS))
    args = parser.parse_args(argv)

    discriminator = electra_tf.ElectraDiscriminator.from_preset(args.preset)
    print(f"ELECTRA-{args.preset} discriminator: {discriminator.count_params():,} parameters")
    inputs = {
        "input_word_ids": np.array([[101, 1996, 4937, 2938, 2006, 1996, 13523, 102, 0, 0]]),
        "input_mask": np.array([[1, 1, 1, 1, 1, 1, 1, 1, 0, 0]]),
        "input_type_ids": np.zeros((1, 10), np.int64),
    }
    logits = discriminator(inputs)["logits"].numpy()

    with tempfile.TemporaryDirectory() as tmp:
        discriminator.save_huggingface(f"{tmp}/hf")
        print(f"wrote a Hugging Face ElectraForPreTraining checkpoint to {tmp}/hf")
        reloaded = electra_tf.ElectraDiscriminator.from_huggingface(f"{tmp}/hf")
        print("max |Δ| electra_tf → HF files → electra_tf:",
              np.abs(reloaded(inputs)["logits"].numpy() - logits).max())
        try:
            import torch
            import transformers
        except ImportError:
            print("(install the test extra to compare with transformers/torch)")
            return
        reference = transformers.ElectraForPreTraining.from_pretrained(f"{tmp}/hf").eval()
        with torch.no_grad():
            torch_logits = reference(
                input_ids=torch.tensor(inputs["input_word_ids"]),
                attention_mask=torch.tensor(inputs["input_mask"]),
                token_type_ids=torch.tensor(inputs["input_type_ids"]),
            ).logits.numpy()
        print("max |Δ| electra_tf vs transformers/torch:", np.abs(torch_logits - logits).max())
    print("replaced-token probabilities:", np.round(1 / (1 + np.exp(-logits[0, :8])), 3))


if __name__ == "__main__":
    main()
