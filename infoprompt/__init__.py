"""InfoPrompt trainer (Wu et al. 2023, arXiv 2306.04933, sections 2–4); see docs/trainer.md.

Modules, in the order a run uses them: ``config`` (RunConfig, validated once) and ``methods``
(each method an object with its defaults and builders); ``tasks`` (tasks, the template grammar,
``Template``), ``data``, ``files``, ``readers``, ``tsv`` and ``sampling`` (examples, reading the
files, few-shot draws); ``backbone`` (the encoder: name, load, hash); ``prompts``, ``adapters``,
``model`` and ``losses`` (what trains, the two InfoNCE terms); ``session`` (one run's pipeline,
built whole); ``runs``, ``loop``, ``evaluation`` and ``train`` (the run folder, the AdamW loop,
scores, one run); ``checkpoint`` (safetensors, atomic files); ``report``, ``predict``, the figures
(``figures``, ``fig_cmi``, ``fig_landscape``, ``plots``). Command line: ``python -m infoprompt
{train,report,predict,figures}`` (``__main__``, ``figures_cli``, ``_cli``).
"""
