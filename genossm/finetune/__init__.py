"""Fine-tuning: a task head on a genossm language model, trained on labelled sequences.

    task.py        TaskSpec: task kind (binary, multiclass, multilabel, regression, token), label
                   names, how labels are read and scaled; what the fine-tuned checkpoint records
    data.py        labelled tables (regions + FASTA, sequence TSV, labelled FASTA) -> examples,
                   train/val/test split by chromosome or split column, crop/pad policy, batches
    positions.py   per-position labels from a BED of positive intervals (`finetune --positions`)
    heads.py       pooling (mean, last, attention), sequence and per-position heads, losses,
                   SequenceTaskModel (backbone + head) with reverse-complement averaging
    lora.py        low-rank adapters on the backbone's projections, merged at export
    metrics.py     AUROC, AUPRC, accuracy, MCC, Pearson, Spearman, MSE (numpy)
    recipe.py      FinetuneRecipe (YAML + --set): head, training mode, optimiser, trainer
    module.py      the LightningModule
    checkpoint.py  the fine-tuned checkpoint directory: save_finetuned / load_finetuned
    job.py         `genossm finetune` as a library call: finetune(FinetuneJob) -> metrics
    predict.py     `genossm predict`: predict(PredictJob), streamed, batched, resumable

Layering: over io, data, models, train, infer (its ranks: `predict --devices`) and the base
modules; only the CLI imports this package.
"""
