// llmc_bench times training steps of llm.c's hand-written CPU GPT-2
// (train_gpt2.c, github.com/karpathy/llm.c, MIT license) at the sizes of
// backpropgen's generated GPT, so that the two can be compared side by side.
//
// It is our own driver: llm.c's source is not part of this repository. Like
// llm.c's test_gpt2.c it defines TESTING, which compiles out train_gpt2.c's
// main (and its sampler), and includes train_gpt2.c; the compiler finds it,
// and the llmc/*.h headers it includes, through -I (see run.sh).
//
// No checkpoint file: the model is built from a GPT2Config with llm.c's own
// fill_in_parameter_sizes and malloc_and_point_parameters, and initialised
// with a fixed seed: weights normal(0, 0.02), layer-norm gains 1, biases 0.
// The tokens and targets are fixed random bytes. One step is what
// train_gpt2.c's main times: gpt2_forward, gpt2_zero_grad, gpt2_backward,
// gpt2_update (AdamW, lr 1e-4, betas 0.9/0.999, eps 1e-8, no weight decay).
//
// Output: one Go benchmark line per run, for benchstat, e.g.
//
//	BenchmarkTrainStep/model=gpt/impl=llmc 	      20	 111000000 ns/op	  24.50 GFLOP/s	 110000000 cpu-ns/op
//
// (wall time per step, GFLOP/s from it, and the process's CPU time per
// step), preceded by comment lines (#) with the configuration, the loss of
// the first step (about ln 256 = 5.545 for random bytes), the thread count
// and the CPU time over wall time of the timed steps: 1.00 for one thread
// that had its core to itself, below 1 when other jobs took the core.
//
//	llmc_bench [-model gpt|gptlarge] [-warmup 2] [-steps 0] [-benchtime 2] [-count 1]
//
// -steps 0 picks the number of timed steps from the warm-up's speed so that
// a run takes about -benchtime seconds (at least 3 steps).
#define TESTING
#include "train_gpt2.c"

#include <sys/resource.h>

// bench_rng is our own xorshift64* generator (train_gpt2.c's random_u32 is
// compiled out under TESTING).
static uint64_t bench_rng = 0x9E3779B97F4A7C15ull;

static uint32_t bench_u32(void) {
    bench_rng ^= bench_rng >> 12;
    bench_rng ^= bench_rng << 25;
    bench_rng ^= bench_rng >> 27;
    return (uint32_t)((bench_rng * 0x2545F4914F6CDD1Dull) >> 32);
}

// bench_uniform is uniform in (0, 1].
static double bench_uniform(void) { return ((bench_u32() >> 8) + 1) / 16777216.0; }

// bench_normal is a standard normal (Box-Muller).
static double bench_normal(void) {
    double u1 = bench_uniform(), u2 = bench_uniform();
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

// os_threads is the process's thread count from /proc/self/status (-1 if unknown).
static int os_threads(void) {
    FILE* f = fopen("/proc/self/status", "r");
    if (f == NULL) { return -1; }
    char line[256];
    int n = -1;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "Threads: %d", &n) == 1) { break; }
    }
    fclose(f);
    return n;
}

// step_flops counts the floating-point operations of one training step the
// usual way: 2 per multiply-add of every matrix product, forward, plus twice
// that backward (the input and the weight gradients), with attention's two
// products (q·kᵀ and p·v) counted in full, as if not causal. Element-wise
// work, layer norms, softmax and AdamW are left out. llm.c's attention loops
// over the causal half only, so it does somewhat less than this.
static double step_flops(GPT2Config c, int B, int T) {
    double N = (double)B * T, C = c.channels, L = c.num_layers, Vp = c.padded_vocab_size;
    double dense = 2 * N * (L * 12 * C * C + Vp * C); // qkv 3C², proj C², fc 4C², fcproj 4C²; the logits
    double attn = L * 2 * 2 * (double)B * T * T * C;  // q·kᵀ and p·v over all heads
    return 3 * (dense + attn);
}

static void usage(void) {
    fprintf(stderr, "usage: llmc_bench [-model gpt|gptlarge] [-warmup N] [-steps N] [-benchtime S] [-count N]\n");
    exit(2);
}

int main(int argc, char** argv) {
    const char* name = "gpt";
    int warmup = 2, steps = 0, count = 1;
    double benchtime = 2.0;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc) { usage(); }
        if (strcmp(argv[i], "-model") == 0) { name = argv[++i]; }
        else if (strcmp(argv[i], "-warmup") == 0) { warmup = atoi(argv[++i]); }
        else if (strcmp(argv[i], "-steps") == 0) { steps = atoi(argv[++i]); }
        else if (strcmp(argv[i], "-benchtime") == 0) { benchtime = atof(argv[++i]); }
        else if (strcmp(argv[i], "-count") == 0) { count = atoi(argv[++i]); }
        else { usage(); }
    }
    if (warmup < 1) { warmup = 1; } // step 1 gives the loss and allocates llm.c's buffers

    // the two configurations of issue 14: layers, channels, heads, context, batch
    int L, C, NH, T, B;
    if (strcmp(name, "gpt") == 0) { L = 4; C = 128; NH = 4; T = 64; B = 8; }
    else if (strcmp(name, "gptlarge") == 0) { L = 6; C = 256; NH = 8; T = 128; B = 8; }
    else { usage(); }

    GPT2 model;
    memset(&model, 0, sizeof model);
    model.config.max_seq_len = T;
    model.config.vocab_size = 256;
    model.config.padded_vocab_size = 256; // already a multiple of 128, llm.c's padding
    model.config.num_layers = L;
    model.config.num_heads = NH;
    model.config.channels = C;
    fill_in_parameter_sizes(model.param_sizes, model.config);
    model.num_parameters = 0;
    for (int i = 0; i < NUM_PARAMETER_TENSORS; i++) { model.num_parameters += model.param_sizes[i]; }
    model.params_memory = malloc_and_point_parameters(&model.params, model.param_sizes);
    model.mean_loss = -1.0f;
    // initialisation, tensor by tensor in llm.c's order: wte, wpe, ln1w, ln1b,
    // qkvw, qkvb, attprojw, attprojb, ln2w, ln2b, fcw, fcb, fcprojw, fcprojb, lnfw, lnfb
    {
        float* p = model.params_memory;
        for (int i = 0; i < NUM_PARAMETER_TENSORS; i++) {
            int gain = (i == 2 || i == 8 || i == 14);
            int bias = (i == 3 || i == 5 || i == 7 || i == 9 || i == 11 || i == 13 || i == 15);
            for (size_t j = 0; j < model.param_sizes[i]; j++) {
                p[j] = gain ? 1.0f : bias ? 0.0f : (float)(0.02 * bench_normal());
            }
            p += model.param_sizes[i];
        }
    }

    // the activations, as gpt2_forward allocates them lazily (done here so
    // that its "num_activations: N" line, which benchstat would read as a
    // configuration key, is not printed)
    model.batch_size = B;
    model.seq_len = T;
    fill_in_activation_sizes(model.act_sizes, model.config, B, T);
    model.num_activations = 0;
    for (int i = 0; i < NUM_ACTIVATION_TENSORS; i++) { model.num_activations += model.act_sizes[i]; }
    model.acts_memory = malloc_and_point_activations(&model.acts, model.act_sizes);
    model.inputs = (int*)mallocCheck((size_t)B * T * sizeof(int));
    model.targets = (int*)mallocCheck((size_t)B * T * sizeof(int));

    // fixed random bytes; the targets are the next byte, as in language modelling
    int* tokens = (int*)mallocCheck((size_t)(B * T + 1) * sizeof(int));
    for (int i = 0; i < B * T + 1; i++) { tokens[i] = bench_u32() % 256; }
    int* inputs = tokens;
    int* targets = tokens + 1;

    int omp_threads = 1;
#ifdef OMP
    omp_threads = omp_get_max_threads();
#endif
    double flops = step_flops(model.config, B, T);
    printf("# llm.c train_gpt2.c, model=%s: L=%d C=%d NH=%d T=%d B=%d V=256 Vp=256, %zu parameters, %.3f GFLOP per step\n",
           name, L, C, NH, T, B, model.num_parameters, flops / 1e9);

    int t = 0; // AdamW's step counter
    float first_loss = 0;
    double warm_s = 0;
    for (int i = 0; i < warmup; i++) {
        double t0 = now_s();
        gpt2_forward(&model, inputs, targets, B, T);
        if (i == 0) { first_loss = model.mean_loss; }
        gpt2_zero_grad(&model);
        gpt2_backward(&model);
        gpt2_update(&model, 1e-4f, 0.9f, 0.999f, 1e-8f, 0.0f, ++t);
        if (i > 0 || warmup == 1) { warm_s = now_s() - t0; } // the first step also allocates
    }
    printf("# step 1 loss %.4f (ln 256 = %.4f); %d warm-up steps\n", first_loss, log(256.0), warmup);

    for (int run = 0; run < count; run++) {
        int n = steps;
        if (n <= 0) {
            n = (int)(benchtime / (warm_s > 0 ? warm_s : 1e-3));
            if (n < 3) { n = 3; }
        }
        double c0 = cpu_s(), t0 = now_s();
        for (int i = 0; i < n; i++) {
            gpt2_forward(&model, inputs, targets, B, T);
            gpt2_zero_grad(&model);
            gpt2_backward(&model);
            gpt2_update(&model, 1e-4f, 0.9f, 0.999f, 1e-8f, 0.0f, ++t);
        }
        double wall = now_s() - t0, cpu = cpu_s() - c0;
        double ns = wall / n * 1e9;
        warm_s = wall / n;
        printf("# omp_get_max_threads %d, OS threads %d, CPU time / wall time %.2f, loss after %d steps %.4f\n",
               omp_threads, os_threads(), cpu / wall, t, model.mean_loss);
        printf("BenchmarkTrainStep/model=%s/impl=llmc \t%8d\t%10.0f ns/op\t%8.2f GFLOP/s\t%10.0f cpu-ns/op\n",
               name, n, ns, flops / (ns * 1e-9) / 1e9, cpu / n * 1e9);
        fflush(stdout);
    }
    gpt2_free(&model);
    free(tokens);
    return 0;
}
