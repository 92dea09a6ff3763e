"""InfoPrompt trainer (Wu et al. 2023, arXiv 2306.04933, sections 2–4); see docs/trainer.md.

Modules, in the order a run uses them: ``config`` (RunConfig, validated up front), ``data`` and
``metrics`` (tasks, readers, few-shot sampling, scores), ``templates`` (template → token ids,
prompt slots, mask), ``model`` (frozen encoder, prompts, head), ``losses`` (the two InfoNCE
terms), ``train`` (the loop), ``checkpoint`` (safetensors, atomic files), ``report`` (tables),
``predict`` (new text). Command line: ``python -m infoprompt {train,report,predict}``.
"""
