// `mcuflash generate man|bash|zsh|fish`: the man page and the shell completions, written from the
// same CLI definition `--help` prints, so they cannot drift from it. CMake runs it at build time and
// installs what it writes; the command is hidden from --help (it is for packaging).
#include <fmt/format.h>

#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "cli/commands.hpp"

namespace mcuflash::cli {

namespace {

struct Command {
    std::string path;  // "" for mcuflash itself, "printer flash"
    const CLI::App* app;
};

bool shown(const CLI::App* app) { return !app->get_group().empty(); }  // hidden ones have no group

void collect(const CLI::App* app, const std::string& path, std::vector<Command>& out) {
    out.push_back({path, app});
    for (const auto* sub : app->get_subcommands([](const CLI::App* s) { return shown(s); }))
        collect(sub, path.empty() ? sub->get_name() : path + " " + sub->get_name(), out);
}

std::vector<const CLI::Option*> options_of(const CLI::App* app) {
    return app->get_options([](const CLI::Option* o) { return !o->get_group().empty() && !o->get_positional(); });
}

std::vector<const CLI::Option*> positionals_of(const CLI::App* app) {
    return app->get_options([](const CLI::Option* o) { return o->get_positional(); });
}

std::vector<std::string> option_words(const CLI::Option* o) {
    std::vector<std::string> words;
    for (const auto& s : o->get_snames()) words.push_back("-" + s);
    for (const auto& l : o->get_lnames()) words.push_back("--" + l);
    return words;
}

std::vector<std::string> subcommand_names(const CLI::App* app) {
    std::vector<std::string> names;
    for (const auto* sub : app->get_subcommands([](const CLI::App* s) { return shown(s); })) names.push_back(sub->get_name());
    return names;
}

// roff: a leading dot or quote would be a request; backslashes are escapes.
std::string roff(const std::string& text) {
    std::string out;
    bool line_start = true;
    for (char c : text) {
        if (line_start && (c == '.' || c == '\'')) out += "\\&";
        if (c == '\\') out += "\\e";
        else if (c == '-') out += "\\-";
        else out += c;
        line_start = c == '\n';
    }
    return out;
}

std::string man_page(const std::vector<Command>& commands, const std::string& version) {
    const CLI::App* root = commands.front().app;
    std::string out = fmt::format(".TH MCUFLASH 1 \"\" \"{}\" \"User Commands\"\n", roff(version));
    out += ".SH NAME\nmcuflash \\- flash 3D\\-printer micro\\-controllers through their bootloaders\n";
    out += ".SH SYNOPSIS\n.B mcuflash\n[\\fIOPTIONS\\fR] \\fICOMMAND\\fR [\\fICOMMAND OPTIONS\\fR]\n";
    out += ".SH DESCRIPTION\n";
    std::string description = roff(root->get_description());
    for (size_t at = 0; (at = description.find('\n', at)) != std::string::npos; at += 5) description.replace(at, 1, "\n.br\n");
    out += description + "\n";
    auto options_section = [&](const CLI::App* app) {
        for (const auto* o : positionals_of(app))
            out += fmt::format(".TP\n.I {}\n{}\n", roff(o->get_name(true)), roff(o->get_description()));
        for (const auto* o : options_of(app)) {
            std::string names;
            for (const auto& w : option_words(o)) names += (names.empty() ? "" : ", ") + fmt::format("\\fB{}\\fR", roff(w));
            if (o->get_type_size() != 0) names += " \\fI" + roff(o->get_type_name()) + "\\fR";
            out += fmt::format(".TP\n{}\n{}\n", names, roff(o->get_description()));
        }
    };
    out += ".SH OPTIONS\nThese work before or after the command.\n";
    options_section(root);
    out += ".SH COMMANDS\n";
    for (size_t i = 1; i < commands.size(); ++i) {
        const auto& c = commands[i];
        out += fmt::format(".SS \"mcuflash {}\"\n{}\n", roff(c.path), roff(c.app->get_description()));
        options_section(c.app);
    }
    out += ".SH FILES\n.TP\n.I ~/printer_data/config/mcuflash.toml\nthe printer manifest of \\fBprinter init\\fR, "
           "\\fBbuild\\fR and \\fBflash\\fR\n.TP\n.I /lib/udev/rules.d/70\\-mcuflash.rules\nusers' access to the USB "
           "bootloaders and debug probes (\\fBmcuflash udev\\-rules\\fR)\n";
    out += ".SH SEE ALSO\n\\fBmcuflash\\-sim\\fR(1), the documents in /usr/share/doc/mcuflash/\n";
    return out;
}

// What completes after each command path: its subcommands and options.
std::map<std::string, std::string> completion_table(const std::vector<Command>& commands) {
    std::map<std::string, std::string> table;
    for (const auto& c : commands) {
        std::string words;
        for (const auto& name : subcommand_names(c.app)) words += (words.empty() ? "" : " ") + name;
        for (const auto* o : options_of(c.app))
            for (const auto& w : option_words(o)) words += (words.empty() ? "" : " ") + w;
        table[c.path] = words;
    }
    return table;
}

std::string bash_completion(const std::vector<Command>& commands) {
    std::string out =
        "# bash completion for mcuflash (written by `mcuflash generate bash`)\n"
        "_mcuflash() {\n"
        "  local cur=${COMP_WORDS[COMP_CWORD]} path='' word i\n"
        "  # The command path: the words before the cursor that name subcommands.\n"
        "  for ((i = 1; i < COMP_CWORD; i++)); do\n"
        "    word=${COMP_WORDS[i]}\n"
        "    [[ $word == -* ]] && continue\n"
        "    case \"${path:+$path }$word\" in\n";
    for (size_t i = 1; i < commands.size(); ++i) out += fmt::format("      '{}') path=\"${{path:+$path }}$word\" ;;\n", commands[i].path);
    out += "    esac\n  done\n  local words\n  case \"$path\" in\n";
    for (const auto& [path, words] : completion_table(commands)) out += fmt::format("    '{}') words='{}' ;;\n", path, words);
    out += "  esac\n"
           "  if [[ $cur == -* || -n $words ]]; then COMPREPLY=($(compgen -W \"$words\" -- \"$cur\")); fi\n"
           "  # Values (files, devices): the shell's file names.\n"
           "  [[ ${#COMPREPLY[@]} -eq 0 && $cur != -* ]] && COMPREPLY=($(compgen -f -- \"$cur\"))\n"
           "  return 0\n"
           "}\n"
           "complete -o filenames -F _mcuflash mcuflash\n";
    return out;
}

std::string zsh_completion(const std::vector<Command>& commands) {
    std::string out =
        "#compdef mcuflash\n"
        "# zsh completion for mcuflash (written by `mcuflash generate zsh`)\n"
        "_mcuflash() {\n"
        "  local -A next\n";
    for (const auto& [path, words] : completion_table(commands))
        out += fmt::format("  next[{}]='{}'\n", path.empty() ? "_" : "'" + path + "'", words);
    out += "  local command_path='' word\n"  // not `path`: zsh ties it to $PATH
           "  for word in ${words[2,CURRENT-1]}; do\n"
           "    [[ $word == -* ]] && continue\n"
           "    (( ${+next[${command_path:+$command_path }$word]} )) && command_path=\"${command_path:+$command_path }$word\"\n"
           "  done\n"
           "  local -a candidates\n"
           "  candidates=(${=next[${command_path:-_}]})\n"
           "  compadd -a candidates\n"
           "  _files\n"
           "}\n"
           "_mcuflash \"$@\"\n";
    return out;
}

std::string fish_completion(const std::vector<Command>& commands) {
    auto quote = [](const std::string& text) {
        std::string out = "'";
        for (char c : text) {
            if (c == '\'' || c == '\\') out += '\\';
            out += c == '\n' ? ' ' : c;
        }
        return out + "'";
    };
    auto first_line = [](const std::string& text) { return text.substr(0, text.find('\n')); };
    std::string out = "# fish completion for mcuflash (written by `mcuflash generate fish`)\n";
    // A subcommand completes after its parent's name and not after any of its own siblings' names.
    for (const auto& c : commands) {
        const std::string name = c.path.empty() ? "" : c.path.substr(c.path.rfind(' ') + 1);
        std::string condition;
        if (c.path.empty()) {
            condition = "__fish_use_subcommand";
        } else {
            condition = "__fish_seen_subcommand_from " + name;
            std::string children;
            for (const auto& child : subcommand_names(c.app)) children += " " + child;
            if (!children.empty()) condition += "; and not __fish_seen_subcommand_from" + children;
        }
        for (const auto& child : c.app->get_subcommands([](const CLI::App* s) { return shown(s); }))
            out += fmt::format("complete -c mcuflash -f -n {} -a {} -d {}\n", quote(condition), child->get_name(),
                               quote(first_line(child->get_description())));
        for (const auto* o : options_of(c.app)) {
            std::string flags;
            for (const auto& s : o->get_snames()) flags += " -s " + s;
            for (const auto& l : o->get_lnames()) flags += " -l " + l;
            out += fmt::format("complete -c mcuflash -n {}{}{} -d {}\n", quote(c.path.empty() ? "true" : condition), flags,
                               o->get_type_size() != 0 ? " -r" : "", quote(first_line(o->get_description())));
        }
    }
    return out;
}

}  // namespace

void register_reference_commands(CLI::App& app, const std::string& version) {
    static std::string what;
    auto* generate = app.add_subcommand("generate", "the man page or a shell's completion, from this CLI's definition");
    generate->group("");  // hidden: for packaging, not for printer owners
    generate->add_option("what", what, "man, bash, zsh or fish")->required()->check(CLI::IsMember({"man", "bash", "zsh", "fish"}));
    generate->callback([&app, version] {
        std::vector<Command> commands;
        collect(&app, "", commands);
        if (what == "man") std::cout << man_page(commands, version);
        else if (what == "bash") std::cout << bash_completion(commands);
        else if (what == "zsh") std::cout << zsh_completion(commands);
        else std::cout << fish_completion(commands);
    });
}

}  // namespace mcuflash::cli
