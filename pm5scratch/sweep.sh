export PYTHONPATH=$PWD/src POLYMODAL_HOME=/tmp/pmh PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -c "import transformers,torch;print(transformers.__version__,torch.__version__)"
python3 -c "from polymodal.data.synth.shapes_vqa import build_shapes_vqa; print(build_shapes_vqa())" 2>&1 | tail -1
run(){ python3 pm5scratch/sweep.py "$@" 2>&1 | grep -v -i warn & }
run n64 64 2 3 2e-3 2000 0 64
run n128 128 2 3 1e-3 2000 0 64
run n64cap 64 2 3 2e-3 1500 500 64
run n128cap 128 2 3 1e-3 1500 500 64
run n96 96 2 3 1.5e-3 2000 0 64
run n128l2 128 2 2 2e-3 2000 0 64
run n64v1 64 1 3 3e-3 2000 0 64
run n128lo 128 2 3 5e-4 2000 0 64
wait
