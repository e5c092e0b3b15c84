#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "cli/options.h"

namespace ferry::cli {
namespace {

// The real subcommands plus a made-up `echo` that takes any positional arguments, so that the
// tests can cover Positional::Args before a real subcommand uses it.
constexpr CommandSet kEcho = 1u << 30;

const std::vector<Subcommand>& test_commands() {
    static const std::vector<Subcommand> commands = [] {
        std::vector<Subcommand> c(subcommands().begin(), subcommands().end());
        c.push_back({.name = "echo",
                     .id = kEcho,
                     .summary = "print the arguments",
                     .usage_tail = "[ARG...]",
                     .positional = Positional::Args});
        return c;
    }();
    return commands;
}

const Subcommand& test_command(std::string_view name) {
    for (const Subcommand& c : test_commands()) {
        if (c.name == name) return c;
    }
    ADD_FAILURE() << "no subcommand " << name;
    return test_commands()[0];
}

std::vector<Option> test_table() { return {options().begin(), options().end()}; }

// Built piecewise: GCC 12 warns falsely (-Wrestrict, PR 105329) on " " + std::string(n).
std::string surrounded(char before, std::string_view s, char after) {
    std::string out(1, before);
    out.append(s).append(1, after);
    return out;
}

class Cli : public ::testing::Test {
protected:
    ParseOutcome parse(std::vector<std::string> args) {
        CommandLine cl{.commands = test_commands(), .options = table_, .env = [this](std::string_view name) {
                           auto it = env_.find(std::string(name));
                           return it == env_.end() ? std::nullopt : std::optional<std::string>(it->second);
                       }};
        return parse_args(args, cl);
    }
    Params ok(std::vector<std::string> args) {
        ParseOutcome o = parse(args);
        EXPECT_EQ(o.kind, ParseOutcome::Kind::Run) << o.text;
        EXPECT_EQ(o.exit_code(), 0);
        return o.params;
    }
    // The error line for a usage error, checked to be exactly one line with exit code 2.
    std::string error(std::vector<std::string> args) {
        ParseOutcome o = parse(args);
        EXPECT_EQ(o.kind, ParseOutcome::Kind::Error);
        EXPECT_EQ(o.exit_code(), 2);
        EXPECT_EQ(std::count(o.text.begin(), o.text.end(), '\n'), 1) << o.text;
        EXPECT_TRUE(o.text.ends_with("\n")) << o.text;
        return o.text;
    }
    std::string help_of(std::string_view command) {
        const Subcommand* c = &test_command(command);
        return format_help(*c, CommandLine{.commands = test_commands(), .options = table_, .env = {}});
    }

    std::vector<Option> table_ = test_table();
    std::map<std::string, std::string> env_;
};

TEST(OptionTable, RealTableIsValid) {
    Status st = validate_table(options(), subcommands());
    EXPECT_TRUE(st.ok()) << st.error().message;
    EXPECT_TRUE(validate_table(test_table(), test_commands()).ok());
}

TEST(OptionTable, NoTwoEntriesShareANameOrEnvVar) {
    std::set<std::string_view> names, envs;
    for (const Option& opt : options()) {
        for (std::string_view n : opt.names) EXPECT_TRUE(names.insert(n).second) << "name used twice: " << n;
        if (!opt.env.empty()) {
            EXPECT_TRUE(envs.insert(opt.env).second) << "env used twice: " << opt.env;
        }
    }
}

TEST(OptionTable, EveryNonHelpOptionHasAnEnvVar) {
    for (const Option& opt : options()) {
        if (!opt.is_help) {
            EXPECT_TRUE(opt.env.starts_with("FERRY_ARG_")) << opt.names[0];
        }
    }
}

// The -t entry: a value option accepted by run and chat.
Option& threads_option(std::vector<Option>& t) {
    for (Option& o : t) {
        if (!o.names.empty() && o.names[0] == "-t") return o;
    }
    ADD_FAILURE() << "no -t option";
    return t.back();
}

TEST(OptionTable, ValidateRejectsBrokenTables) {
    auto broken = [](auto edit) {
        std::vector<Option> t = test_table();
        edit(t);
        return validate_table(t, test_commands());
    };
    Status dup_name = broken([](std::vector<Option>& t) { threads_option(t).names = {"--model"}; });
    ASSERT_FALSE(dup_name.ok());
    EXPECT_NE(dup_name.error().message.find("'--model' used twice"), std::string::npos);
    Status dup_env = broken([](std::vector<Option>& t) { threads_option(t).env = "FERRY_ARG_MODEL"; });
    ASSERT_FALSE(dup_env.ok());
    EXPECT_NE(dup_env.error().message.find("FERRY_ARG_MODEL used twice"), std::string::npos);
    EXPECT_FALSE(broken([](std::vector<Option>& t) { threads_option(t).hint = ""; }).ok());
    EXPECT_FALSE(broken([](std::vector<Option>& t) { threads_option(t).names = {"threads"}; }).ok());
    EXPECT_FALSE(broken([](std::vector<Option>& t) { threads_option(t).commands = 1u << 12; }).ok());
    EXPECT_FALSE(broken([](std::vector<Option>& t) { threads_option(t).set_switch = [](Params&, bool) {}; }).ok());
}

TEST_F(Cli, ModelInEveryForm) {
    for (auto args : std::vector<std::vector<std::string>>{
             {"inspect", "-m", "a.gguf"},
             {"inspect", "--model", "a.gguf"},
             {"inspect", "--model=a.gguf"},
             {"inspect", "-m=a.gguf"},
             {"inspect", "a.gguf"},
             {"inspect", "--", "a.gguf"},
         }) {
        Params p = ok(args);
        EXPECT_EQ(p.model, "a.gguf") << args[1];
        EXPECT_EQ(p.subcommand, "inspect");
        EXPECT_TRUE(p.positional.empty());
    }
}

TEST_F(Cli, ValueMayContainEqualsAndStartWithDash) {
    EXPECT_EQ(ok({"inspect", "--model=dir/a=b.gguf"}).model, "dir/a=b.gguf");
    EXPECT_EQ(ok({"inspect", "-m", "-weird.gguf"}).model, "-weird.gguf");
    EXPECT_EQ(ok({"inspect", "-m=--json"}).model, "--json");
    EXPECT_EQ(ok({"run", "-t", "-1"}).threads, -1);
}

TEST_F(Cli, Switches) {
    Params d = ok({"inspect", "x.gguf"});
    EXPECT_FALSE(d.no_mmap);
    EXPECT_FALSE(d.tensors);
    EXPECT_FALSE(d.json);
    EXPECT_EQ(d.log_level, log::Level::Info);

    Params p = ok({"inspect", "--no-mmap", "x.gguf", "--tensors", "--json"});
    EXPECT_TRUE(p.no_mmap);
    EXPECT_TRUE(p.tensors);
    EXPECT_TRUE(p.json);
    EXPECT_EQ(ok({"inspect", "x.gguf", "-v"}).log_level, log::Level::Debug);
    EXPECT_EQ(ok({"inspect", "x.gguf", "--verbose"}).log_level, log::Level::Debug);
    EXPECT_EQ(ok({"inspect", "x.gguf", "--log-verbose"}).log_level, log::Level::Debug);
    EXPECT_EQ(ok({"inspect", "x.gguf", "--log-disable"}).log_level, log::Level::Off);
}

TEST_F(Cli, SwitchRejectsAValue) {
    std::string e = error({"inspect", "x.gguf", "--json=1"});
    EXPECT_NE(e.find("'--json' takes no value"), std::string::npos) << e;
}

TEST_F(Cli, IntegerValues) {
    Params p = ok({"run", "-t", "8", "--ctx-size=4096"});
    EXPECT_EQ(p.threads, 8);
    EXPECT_EQ(p.ctx_size, 4096);
    EXPECT_EQ(ok({"run", "--threads=3"}).threads, 3);
    EXPECT_EQ(ok({"run", "-c", "0"}).ctx_size, 0);
}

TEST_F(Cli, MalformedIntegers) {
    for (std::string bad : {"abc", "99999999999", "4x", "", " 4", "1.5", "-2", "0x10", "+4"}) {
        std::string e = error({"run", "-t", bad});
        EXPECT_NE(e.find("invalid value '" + bad + "' for '-t'"), std::string::npos) << e;
        EXPECT_NE(e.find("expected an integer"), std::string::npos) << e;
        EXPECT_NE(e.find("see 'ferry run --help'"), std::string::npos) << e;
    }
    std::string e = error({"run", "--ctx-size=lots"});
    EXPECT_NE(e.find("for '--ctx-size'"), std::string::npos) << e;
}

TEST_F(Cli, CacheTypesAndFlashAttention) {
    Params p = ok({"run", "-ctk", "q8_0", "--cache-type-v=Q4_0", "-fa", "off"});
    EXPECT_EQ(p.cache_type_k, GgmlType::Q8_0);
    EXPECT_EQ(p.cache_type_v, GgmlType::Q4_0);
    EXPECT_EQ(p.flash_attn, "off");
    EXPECT_EQ(ok({"chat"}).cache_type_k, GgmlType::F16);
    std::string e = error({"run", "-ctk", "q4_k"});
    EXPECT_NE(e.find("invalid value 'q4_k' for '-ctk'"), std::string::npos) << e;
    EXPECT_NE(e.find("q8_0"), std::string::npos) << e;
    e = error({"run", "-fa", "maybe"});
    EXPECT_NE(e.find("expected on, off, auto, 1 or 0"), std::string::npos) << e;
}

// ferry bench shares -m -p -n -t -b -ub -ctk -ctv -fa with run, as comma lists that repetition extends.
TEST_F(Cli, BenchLists) {
    Params p = ok({"bench", "-m",         "a.gguf", "-m",      "b.gguf", "-p",    "128,512",   "-p",     "0",
                   "-n",    "16",         "-pg",    "512,128", "-pg",    "64,8",  "-d",        "0,4096", "-t",
                   "1,2",   "-b",         "256",    "-ub",     "64,128", "-ctk",  "f16,q8_0",  "-ctv",   "q8_0",
                   "-fa",   "1,off,auto", "-r",     "3",       "-o",     "jsonl", "--progress"});
    const tools::BenchParams& b = p.bench;
    EXPECT_EQ(b.models, (std::vector<std::string>{"a.gguf", "b.gguf"}));
    EXPECT_EQ(b.n_prompt, (std::vector<int>{128, 512, 0}));
    EXPECT_EQ(b.n_gen, (std::vector<int>{16}));
    EXPECT_EQ(b.prompt_gen, (std::vector<std::pair<int, int>>{{512, 128}, {64, 8}}));
    EXPECT_EQ(b.n_depth, (std::vector<int>{0, 4096}));
    EXPECT_EQ(b.threads, (std::vector<int>{1, 2}));
    EXPECT_EQ(b.n_batch, (std::vector<int>{256}));
    EXPECT_EQ(b.n_ubatch, (std::vector<int>{64, 128}));
    EXPECT_EQ(b.type_k, (std::vector<GgmlType>{GgmlType::F16, GgmlType::Q8_0}));
    EXPECT_EQ(b.type_v, (std::vector<GgmlType>{GgmlType::Q8_0}));
    EXPECT_EQ(b.flash_attn, (std::vector<std::string>{"on", "off", "auto"}));
    EXPECT_EQ(b.repetitions, 3);
    EXPECT_EQ(b.output, "jsonl");
    EXPECT_TRUE(b.progress);
    // The same flags keep their scalar meaning elsewhere.
    Params r = ok({"run", "-p", "128,512", "-n", "16", "-t", "2"});
    EXPECT_EQ(r.prompt, "128,512");
    EXPECT_EQ(r.n_predict, 16);
    EXPECT_TRUE(r.bench.n_prompt.empty());
    // Defaults: empty lists (bench.h fills in llama-bench's), 5 repetitions, md.
    Params d = ok({"bench"});
    EXPECT_TRUE(d.bench.n_prompt.empty() && d.bench.threads.empty() && d.bench.models.empty());
    EXPECT_EQ(d.bench.repetitions, 5);
    EXPECT_EQ(d.bench.output, "md");
}

TEST_F(Cli, BenchBadListsAreUsageErrors) {
    struct Case {
        std::vector<std::string> args;
        std::string says;
    };
    const std::vector<Case> cases = {
        {{"bench", "-p", "128,,512"}, "item 2 of the comma list is empty"},
        {{"bench", "-p", "128,"}, "item 2 of the comma list is empty"},
        {{"bench", "-n", "x"}, "item 1: expected an integer"},
        {{"bench", "-n", "-1"}, "item 1: expected an integer from 0"},
        {{"bench", "-t", "0"}, "expected an integer from 1"},
        {{"bench", "-ub", "1,2,big"}, "item 3: expected an integer"},
        {{"bench", "-ctk", "f16,q9_9"}, "item 2"},
        {{"bench", "-fa", "yes"}, "expected on, off, auto, 1 or 0"},
        {{"bench", "-pg", "512"}, "expected two numbers, PP,TG"},
        {{"bench", "-pg", "1,2,3"}, "expected two numbers, PP,TG"},
        {{"bench", "-o", "sql"}, "expected md, csv, json or jsonl"},
        {{"bench", "-r", "0"}, "expected an integer from 1"},
        {{"bench", "--bandwidth-gbs", "-3"}, "--bandwidth-gbs"},
        {{"bench", "--repetition", "3"}, "did you mean '--repetitions'"},
        {{"bench", "--temp", "0"}, "is not an option of 'bench'"},
        {{"bench", "model.gguf"}, "unexpected argument 'model.gguf'"},
    };
    for (const Case& c : cases) {
        const std::string e = error(c.args);
        EXPECT_NE(e.find(c.says), std::string::npos) << e;
        EXPECT_TRUE(e.starts_with("ferry bench: ")) << e;
    }
}

TEST_F(Cli, BenchHelpShowsItsOwnDefaults) {
    const std::string h = help_of("bench");
    EXPECT_NE(h.find("--vs-llama-cpp"), std::string::npos);
    EXPECT_NE(h.find("(default: 128)"), std::string::npos) << h;  // -n in bench, not run's -1
    EXPECT_NE(h.find("(default: 5)"), std::string::npos) << h;
    EXPECT_NE(help_of("run").find("(default: -1)"), std::string::npos);
}

TEST_F(Cli, RepeatedFlagLastWins) {
    EXPECT_EQ(ok({"run", "-t", "2", "--threads", "5"}).threads, 5);
    EXPECT_EQ(ok({"inspect", "-m", "a.gguf", "-m", "b.gguf"}).model, "b.gguf");
}

TEST_F(Cli, PositionalArgs) {
    EXPECT_EQ(ok({"echo", "hello", "--log-disable", "world"}).positional, (std::vector<std::string>{"hello", "world"}));
    EXPECT_EQ(ok({"echo", "--", "-t", "-"}).positional, (std::vector<std::string>{"-t", "-"}));
    EXPECT_NE(error({"run", "hello"}).find("hello"), std::string::npos);
}

TEST_F(Cli, UnknownFlagSuggestsTheClosestName) {
    std::string e = error({"inspect", "x.gguf", "--tensor"});
    EXPECT_EQ(e,
              "ferry inspect: unknown argument '--tensor' (did you mean '--tensors'?); "
              "see 'ferry inspect --help'\n");
    e = error({"inspect", "--modle=x.gguf"});
    EXPECT_NE(e.find("unknown argument '--modle' (did you mean '--model'?)"), std::string::npos) << e;
}

TEST_F(Cli, ControlCharactersAreEscapedInErrors) {
    std::string e = error({"inspect", "x.gguf", "--a\nb\x1b[31m"});
    EXPECT_NE(e.find("unknown argument '--a\\x0ab\\x1b[31m'"), std::string::npos) << e;
    env_["FERRY_ARG_JSON"] = "\r";
    e = error({"inspect", "x.gguf"});
    EXPECT_NE(e.find("'\\x0d'"), std::string::npos) << e;
}

TEST_F(Cli, UnknownFlagWithoutCloseMatchHasNoSuggestion) {
    std::string e = error({"inspect", "x.gguf", "--frobnicate"});
    EXPECT_NE(e.find("unknown argument '--frobnicate'"), std::string::npos) << e;
    EXPECT_EQ(e.find("did you mean"), std::string::npos) << e;
}

TEST_F(Cli, SuggestionsComeFromThisSubcommandOnly) {
    // --thread is one edit from --threads, but inspect does not take --threads.
    std::string e = error({"inspect", "x.gguf", "--thread", "4"});
    EXPECT_EQ(e.find("--threads"), std::string::npos) << e;
}

TEST_F(Cli, FlagOfAnotherSubcommand) {
    std::string e = error({"inspect", "x.gguf", "-t", "4"});
    EXPECT_EQ(e,
              "ferry inspect: '-t' is not an option of 'inspect' (it is for: run, chat, bench, serve, perplexity); see "
              "'ferry inspect --help'\n");
    e = error({"run", "--tensors"});
    EXPECT_NE(e.find("'--tensors' is not an option of 'run' (it is for: inspect)"), std::string::npos) << e;
}

TEST_F(Cli, MissingValue) {
    std::string e = error({"inspect", "-m"});
    EXPECT_EQ(e, "ferry inspect: '-m' needs a value (FNAME); see 'ferry inspect --help'\n");
    e = error({"run", "--threads"});
    EXPECT_NE(e.find("'--threads' needs a value (N)"), std::string::npos) << e;
    e = error({"inspect", "-m", "--json", "x.gguf"});
    EXPECT_NE(e.find("'-m' needs a value (FNAME), not the option '--json'"), std::string::npos) << e;
    e = error({"inspect", "--model="});
    EXPECT_NE(e.find("invalid value '' for '--model'"), std::string::npos) << e;
}

TEST_F(Cli, ModelAtMostOnceForInspect) {
    EXPECT_EQ(ok({"inspect"}).model, "");  // the tool falls back to its default model
    std::string e = error({"inspect", "a.gguf", "b.gguf"});
    EXPECT_NE(e.find("unexpected argument 'b.gguf'"), std::string::npos) << e;
    e = error({"inspect", "-m", "a.gguf", "b.gguf"});
    EXPECT_NE(e.find("the model is given twice: '-m a.gguf' and 'b.gguf'"), std::string::npos) << e;
}

TEST_F(Cli, EnvFallback) {
    env_["FERRY_ARG_MODEL"] = "env.gguf";
    env_["FERRY_ARG_TENSORS"] = "1";
    env_["FERRY_ARG_JSON"] = "true";
    env_["FERRY_ARG_NO_MMAP"] = "off";
    env_["FERRY_ARG_THREADS"] = "6";
    Params p = ok({"inspect"});
    EXPECT_EQ(p.model, "env.gguf");
    EXPECT_TRUE(p.tensors);
    EXPECT_TRUE(p.json);
    EXPECT_FALSE(p.no_mmap);
    EXPECT_EQ(p.threads, -1);  // FERRY_ARG_THREADS belongs to run, not inspect
    EXPECT_EQ(ok({"run"}).threads, 6);
}

TEST_F(Cli, FlagsOverrideEnv) {
    env_["FERRY_ARG_MODEL"] = "env.gguf";
    env_["FERRY_ARG_JSON"] = "0";
    env_["FERRY_ARG_THREADS"] = "6";
    env_["FERRY_ARG_LOG_DISABLE"] = "1";
    EXPECT_EQ(ok({"inspect", "-m", "cli.gguf"}).model, "cli.gguf");
    EXPECT_EQ(ok({"inspect", "pos.gguf"}).model, "pos.gguf");
    EXPECT_TRUE(ok({"inspect", "--json"}).json);
    EXPECT_EQ(ok({"run", "--threads=2"}).threads, 2);
    EXPECT_EQ(ok({"inspect", "--log-disable"}).log_level, log::Level::Off);
    EXPECT_EQ(ok({"inspect"}).log_level, log::Level::Off);
}

TEST_F(Cli, EmptyEnvIsUnset) {
    env_["FERRY_ARG_MODEL"] = "";
    env_["FERRY_ARG_THREADS"] = "";
    EXPECT_EQ(ok({"inspect"}).model, "");
    EXPECT_EQ(ok({"run"}).threads, -1);
}

TEST_F(Cli, MalformedEnvNamesTheVariable) {
    env_["FERRY_ARG_THREADS"] = "many";
    std::string e = error({"run"});
    EXPECT_NE(e.find("invalid value 'many' in FERRY_ARG_THREADS (--threads): expected an integer"), std::string::npos)
        << e;
    env_["FERRY_ARG_JSON"] = "maybe";
    e = error({"inspect", "x.gguf"});
    EXPECT_NE(e.find("FERRY_ARG_JSON"), std::string::npos) << e;
    // A malformed variable is not read when its flag is given.
    EXPECT_TRUE(ok({"inspect", "x.gguf", "--json"}).json);
}

TEST_F(Cli, HelpListsEveryAcceptedFlagAndItsEnvVar) {
    for (const Subcommand& c : test_commands()) {
        std::string help = help_of(c.name);
        EXPECT_TRUE(help.starts_with("usage: ferry " + std::string(c.name) + " [options]")) << help;
        for (const Option& opt : table_) {
            const bool accepted = (opt.commands & c.id) != 0;
            for (std::string_view n : opt.names) {
                const bool listed = help.find(surrounded(' ', n, ' ')) != std::string::npos ||
                                    help.find(surrounded(' ', n, ',')) != std::string::npos;
                EXPECT_EQ(listed, accepted) << c.name << " " << n << "\n" << help;
            }
            if (!opt.env.empty()) {
                EXPECT_EQ(help.find("(env: " + std::string(opt.env) + ")") != std::string::npos, accepted)
                    << c.name << " " << opt.env;
            }
        }
    }
}

TEST_F(Cli, HelpShowsDefaultsGroupsAndFitsTheLine) {
    std::string help = help_of("run");
    EXPECT_NE(help.find("-t, --threads N"), std::string::npos) << help;
    EXPECT_NE(help.find("(default: auto)"), std::string::npos) << help;
    EXPECT_NE(help.find("\ncompute:\n"), std::string::npos) << help;
    EXPECT_NE(help.find("\nlogging:\n"), std::string::npos) << help;
    size_t start = 0;
    while (start < help.size()) {
        size_t end = help.find('\n', start);
        EXPECT_LE(end - start, 100u) << help.substr(start, end - start);
        start = end + 1;
    }
}

TEST_F(Cli, HelpWinsAnywhere) {
    for (auto args : std::vector<std::vector<std::string>>{
             {"inspect", "--help"}, {"inspect", "-h"}, {"inspect", "--bogus", "-h"}, {"inspect", "-m", "-h"}}) {
        ParseOutcome o = parse(args);
        EXPECT_EQ(o.kind, ParseOutcome::Kind::Print) << args.back();
        EXPECT_EQ(o.exit_code(), 0);
        EXPECT_TRUE(o.text.starts_with("usage: ferry inspect")) << o.text;
    }
    // After "--", -h is a positional argument.
    EXPECT_EQ(ok({"echo", "--", "-h"}).positional, (std::vector<std::string>{"-h"}));
}

TEST_F(Cli, TopLevel) {
    for (auto args : std::vector<std::vector<std::string>>{{}, {"--help"}, {"-h"}, {"help"}}) {
        ParseOutcome o = parse(args);
        EXPECT_EQ(o.kind, ParseOutcome::Kind::Print);
        EXPECT_NE(o.text.find("inspect"), std::string::npos) << o.text;
        EXPECT_NE(o.text.find("print a GGUF file's metadata"), std::string::npos) << o.text;
    }
    ParseOutcome v = parse({"--version"});
    EXPECT_EQ(v.kind, ParseOutcome::Kind::Print);
    EXPECT_TRUE(v.text.starts_with("ferry ")) << v.text;

    ParseOutcome h = parse({"help", "run"});
    EXPECT_EQ(h.kind, ParseOutcome::Kind::Print);
    EXPECT_TRUE(h.text.starts_with("usage: ferry run [options] -p PROMPT | -f FILE")) << h.text;

    EXPECT_EQ(error({"inspct", "x.gguf"}),
              "ferry: unknown subcommand 'inspct' (did you mean 'inspect'?); see 'ferry --help'\n");
    EXPECT_NE(error({"help", "rnu"}).find("(did you mean 'run'?)"), std::string::npos);
    EXPECT_EQ(error({"--bogus"}), "ferry: unknown argument '--bogus'; see 'ferry --help'\n");
    EXPECT_NE(error({"--verison"}).find("did you mean '--version'"), std::string::npos);
    EXPECT_NE(error({"-m", "x.gguf", "inspect"})
                  .find("'-m' must follow a subcommand (it is for: inspect, run, chat, bench, serve, tokenize, "
                        "template, perplexity)"),
              std::string::npos);
}

TEST(ParseInt, Bounds) {
    EXPECT_EQ(parse_int("0", 0, 10).value(), 0);
    EXPECT_EQ(parse_int("10", 0, 10).value(), 10);
    EXPECT_EQ(parse_int("-5", -5, 10).value(), -5);
    EXPECT_FALSE(parse_int("11", 0, 10).ok());
    EXPECT_FALSE(parse_int("-6", -5, 10).ok());
    EXPECT_FALSE(parse_int("99999999999999999999999", 0, 10).ok());
    EXPECT_EQ(parse_int("11", 0, 10).error().message, "expected an integer from 0 to 10");
    EXPECT_EQ(parse_int("x", 0, 10).error().message, "expected an integer");
}

TEST(ParseBool, Spellings) {
    for (auto s : {"1", "true", "TRUE", "on", "yes", "Yes"}) EXPECT_TRUE(parse_bool(s).value()) << s;
    for (auto s : {"0", "false", "off", "no", "NO"}) EXPECT_FALSE(parse_bool(s).value()) << s;
    for (auto s : {"", "2", "y", "enable"}) EXPECT_FALSE(parse_bool(s).ok()) << s;
}

TEST(EditDistance, Basics) {
    EXPECT_EQ(edit_distance("", ""), 0u);
    EXPECT_EQ(edit_distance("abc", ""), 3u);
    EXPECT_EQ(edit_distance("", "abc"), 3u);
    EXPECT_EQ(edit_distance("--tensor", "--tensors"), 1u);
    EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
    EXPECT_EQ(edit_distance("inspct", "inspect"), 1u);
    EXPECT_EQ(edit_distance("--tesnors", "--tensors"), 1u);  // a swap is one edit
    EXPECT_EQ(edit_distance("ca", "abc"), 3u);               // no editing a swapped pair again
}

}  // namespace
}  // namespace ferry::cli
