process GENOSSM_SCORE {
    tag "$meta.id"
    label 'process_medium'

    conda "${moduleDir}/environment.yml"

    input:
    tuple val(meta), path(vcf)      // meta.samples: 'all' or 'S1,S2' adds per-sample haplotype scores
    tuple val(meta2), path(fasta)
    path model                      // checkpoint directory; [] for the model bundled with genossm

    output:
    tuple val(meta), path("*.vcf.gz")    , emit: vcf
    tuple val(meta), path("*.vcf.gz.tbi"), emit: tbi
    path "versions.yml"                  , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    def prefix = task.ext.prefix ?: "${meta.id}.genossm"
    def model_arg = model ? "--model ${model}" : ''
    def samples_arg = meta.samples ? "--samples ${meta.samples}" : ''
    """
    genossm -q score ${vcf} --fasta ${fasta} ${model_arg} ${samples_arg} --threads ${task.cpus} ${args} -o ${prefix}.vcf.gz

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        genossm: \$(genossm --version | sed 's/^genossm //')
    END_VERSIONS
    """

    stub:
    def prefix = task.ext.prefix ?: "${meta.id}.genossm"
    """
    echo "" | gzip > ${prefix}.vcf.gz
    touch ${prefix}.vcf.gz.tbi

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        genossm: \$(genossm --version | sed 's/^genossm //')
    END_VERSIONS
    """
}
