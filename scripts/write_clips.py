"""Write clips of a generated data set as a folder of video files with `captions.csv`: the
layout of one's own videos, to try the folder workflow (prepare, fine-tune) on known data.

    python scripts/write_clips.py --dataset camera_moves --count 1000 --shape 17x64x64 --out my_camera_videos

Clip i is example i of the data set's `--split` (train by default) at `--shape`, an MP4
(a PNG for one frame) at 8 frames per second, captioned as the data set captions it.
"""

import argparse

from sora_lite import cli


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="camera_moves", choices=("moving_shapes", "camera_moves"))
    parser.add_argument("--count", type=int, default=1000, help="how many clips")
    parser.add_argument("--shape", default="17x64x64", help="FRAMESxHEIGHTxWIDTH of every clip")
    parser.add_argument("--split", default="train", choices=("train", "validation", "test_heldout"))
    parser.add_argument("--out", required=True, help="the folder to write")
    args = parser.parse_args()
    try:
        from sora_lite.datasets import camera_moves, moving_shapes, video_folder
        from sora_lite.shapes import parse_shape

        module = {"moving_shapes": moving_shapes, "camera_moves": camera_moves}[args.dataset]
        if args.count < 1:
            raise ValueError(f"--count must be at least 1; got {args.count}")
        frames, height, width = parse_shape(args.shape)
        ext = "png" if frames == 1 else "mp4"
        examples = (module.example(args.split, i, height, width, frames) for i in range(args.count))
        n = video_folder.write_folder(args.out, ((f"{i:06d}.{ext}", ex["video"], ex["caption"])
                                                 for i, ex in enumerate(examples)))
    except cli.USER_ERRORS as e:
        parser.exit(2, f"write_clips.py: error: {e}\n")
    print(f"wrote {n} clips of {args.dataset} {args.split} at {args.shape} to {args.out}")


if __name__ == "__main__":
    main()
