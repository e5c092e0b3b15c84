// Feature-by-feature renders. Every expected string below was produced by Python's jinja2 3.1.6 in
// transformers' configuration (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks,
// loopcontrols, json.dumps tojson, strftime_now pinned to 2026-01-15) with the context kContext.
#include <gtest/gtest.h>

#include "text/jinja/template.h"

namespace ferry::text {
namespace {

using nlohmann::ordered_json;

const char* const kContext = R"({"d":{"B":1,"a":2,"c":null},"l":[3,1,2],"s":"  hello wORLD  ","n":null,"f":0.1,)"
                             R"("u":[{"n":"x","v":1},{"n":"y","v":0}]})";

std::tm pinned_clock() {
    std::tm t{};
    t.tm_year = 2026 - 1900;
    t.tm_mday = 15;
    t.tm_wday = 4;
    t.tm_yday = 14;
    return t;
}

struct RenderCase {
    const char* source;
    const char* expected;
};

const RenderCase
    kCases[] =
        {
            {R"JT({{ l }} {{ d }} {{ (1, 2) }} {{ (1,) }} {{ n }} {{ true }} {{ false }} {{ f }})JT",
             R"JT([3, 1, 2] {'B': 1, 'a': 2, 'c': None} (1, 2) (1,) None True False 0.1)JT"},
            {R"JT({{ 1e20 }} {{ 0.00001 }} {{ 0.0001 }} {{ 1/3 }} {{ 1e16 }} {{ 1e15 }} {{ 123456789012345.6 }} {{ 2.0 }} {{ -0.0 }})JT",
             R"JT(1e+20 1e-05 0.0001 0.3333333333333333 1e+16 1000000000000000.0 123456789012345.6 2.0 -0.0)JT"},
            {R"JT({{ 2**10 }} {{ 2**-1 }} {{ 7//2 }} {{ -7//2 }} {{ -7 % 3 }} {{ 7.5 // 2 }} {{ 7 / 2 }} {{ 1 + 2 * 3 - 4 }} {{ -2 ** 2 }})JT",
             R"JT(1024 0.5 3 -4 2 3.0 3.5 3 4)JT"},
            {R"JT({{ d|dictsort }} {{ d|items|list }} {{ l|sort }} {{ l|sort(reverse=true) }} {{ l|reverse|list }} {{ l|first }} {{ l|last }} {{ l|join(",") }} {{ l|length }} {{ l|count }})JT",
             R"JT([('a', 2), ('B', 1), ('c', None)] [('B', 1), ('a', 2), ('c', None)] [1, 2, 3] [3, 2, 1] [2, 1, 3] 3 2 3,1,2 3 3)JT"},
            {R"JT([{{ s|trim }}] [{{ s|upper }}] [{{ s|lower }}] [{{ s|title }}] [{{ s|capitalize }}] [{{ "they're bill's-friends"|title }}])JT",
             R"JT([hello wORLD] [  HELLO WORLD  ] [  hello world  ] [  Hello World  ] [  hello world  ] [They're Bill's-Friends])JT"},
            {R"JT({{ u|map(attribute="n")|list }} {{ u|selectattr("v")|list }} {{ u|rejectattr("v")|map(attribute="n")|join }} {{ l|select("odd")|list }} {{ l|reject("equalto", 1)|list }} {{ ["a","B"]|map("upper")|list }})JT",
             R"JT(['x', 'y'] [{'n': 'x', 'v': 1}] y [3, 1] [3, 2] ['A', 'B'])JT"},
            {R"JT({{ u|selectattr("n", "equalto", "y")|list }} {{ u|map(attribute="zz", default="D")|list }} {{ l|map("string")|join("-") }})JT",
             R"JT([{'n': 'y', 'v': 0}] ['D', 'D'] 3-1-2)JT"},
            {R"JT({{ d|tojson }} {{ d|tojson(indent=2) }} {{ [1.5, 2.0, 1e100, true, none]|tojson }} {{ {"a": [1, {"b": []}, {}]}|tojson(indent=2) }})JT",
             R"JT({"B": 1, "a": 2, "c": null} {
  "B": 1,
  "a": 2,
  "c": null
} [1.5, 2.0, 1e+100, true, null] {
  "a": [
    1,
    {
      "b": []
    },
    {}
  ]
})JT"},
            {R"JT({{ "é\n\"\\\t\u0001\u007f\u2028<>&'"|tojson }} {{ "日本"|tojson(ensure_ascii=true) }} {{ {"a":1,"b":[2]}|tojson(separators=(",",":")) }} {{ {"b":1,"a":2}|tojson(sort_keys=true) }})JT",
             R"JT("é\n\"\\\t\u0001 <>&'" "\u65e5\u672c" {"a":1,"b":[2]} {"a": 2, "b": 1})JT"},
            {R"JT({% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %})JT", R"JT(B=1;a=2;c=None;)JT"},
            {R"JT({% for x in l if x > 1 %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.length }}/{{ loop.first }}/{{ loop.last }}/{{ loop.previtem }}/{{ loop.nextitem }}/{{ loop.revindex }}/{{ loop.revindex0 }} {% else %}none{% endfor %})JT",
             R"JT(1/0/2/True/False//2/2/1 2/1/2/False/True/3//1/0 )JT"},
            {R"JT({% for x in [] %}a{% else %}empty{% endfor %} {% for x in l %}{% if x == 1 %}{% break %}{% endif %}{{ x }}{% endfor %} {% for x in l %}{% if x == 1 %}{% continue %}{% endif %}{{ x }}{% endfor %} {% for x in l %}{{ loop.cycle("a", "b") }}{% endfor %})JT",
             R"JT(empty 3 32 aba)JT"},
            {R"JT({% for x in "ab" %}{{ x }}.{% endfor %} {% for k in d %}{{ k }}{% endfor %} {% for a, b in [(1, 2), [3, 4]] %}{{ a + b }}{% endfor %} {% for x in l %}{% for y in l %}{{ loop.index }}{% endfor %}{{ loop.index }}|{% endfor %})JT",
             R"JT(a.b. Bac 37 1231|1232|1233|)JT"},
            {R"JT({{ "abc"[::-1] }} {{ "abc"[1:] }} {{ l[:-1] }} {{ l[-1] }} {{ "hello"[1:4:2] }} [{{ l[5] }}] {{ l[1:100] }} {{ l[-100:1] }} {{ l[::-2] }} {{ "héllo"[1] }} {{ "héllo"|length }} {{ (1,2,3)[::2] }})JT",
             R"JT(cba bc [3, 1] 2 el [] [1, 2] [3] [2, 3] é 5 (1, 3))JT"},
            {R"JT({{ "a,b,,c".split(",") }} {{ " a  b ".split() }} {{ "a b c".split(" ", 1) }} {{ "abc".startswith(("x","a")) }} {{ "abc".endswith("bc") }} {{ "{} and {name}".format(1, name="x") }} {{ "{0}{1}{0}".format("a", "b") }})JT",
             R"JT(['a', 'b', '', 'c'] ['a', 'b'] ['a', 'b c'] True True 1 and x aba)JT"},
            {R"JT({{ "x" in "xyz" }} {{ 1 in l }} {{ "B" in d }} {{ 5 not in l }} {{ "a" ~ 1 ~ none ~ true ~ [1] }} {{ 1 if n else 2 }} [{{ 1 if n }}] {{ n is none }} {{ x is defined }} {{ d.c is none }} {{ d.zz is undefined }})JT",
             R"JT(True True True True a1NoneTrue[1] 2 [] True False True True)JT"},
            {R"JT({% set a, b = 1, 2 %}{{ a }}{{ b }} {% set x %}inner {{ a }}{% endset %}[{{ x }}] {% set y | upper %}up{% endset %}{{ y }} {% filter upper %}filt {{ a }}{% endfilter %})JT",
             R"JT(12 [inner 1] UP FILT 1)JT"},
            {R"JT({% macro m(a, b="B") %}{{ a }}{{ b }}{{ kwargs }}{{ varargs }}{% endmacro %}{{ m(1) }} {{ m(1, 2, 3) }} {{ m(1, c=4) }} {{ m(b=7, a=6) }})JT",
             R"JT(1B{}() 12{}(3,) 1B{'c': 4}() 67{}())JT"},
            {R"JT({% macro w() %}<{{ caller() }}>{% endmacro %}{% call w() %}body{% endcall %} {% macro w2() %}<{{ caller(5) }}>{% endmacro %}{% call(v) w2() %}got {{ v }}{% endcall %})JT",
             R"JT(<body> <got 5>)JT"},
            {R"JT({% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n * fact(n - 1)|int }}{% endif %}{% endmacro %}{{ fact(6) }})JT",
             R"JT(720)JT"},
            {R"JT({{ range(5)|list }} {{ range(1, 10, 3)|list }} {{ range(5, 0, -2)|list }} {{ dict(a=1, b=2) }} {{ namespace(a=1).a }} {{ 10|string + "x" }} {{ "3"|int + 1 }} {{ "3.5"|float }} {{ "x"|int }} {{ "4.7"|int }} {{ -3|abs }})JT",
             R"JT([0, 1, 2, 3, 4] [1, 4, 7] [5, 3, 1] {'a': 1, 'b': 2} 1 10x 4 3.5 0 4 3)JT"},
            {R"JT({{ 2.5|round }} {{ 3.5|round }} {{ 3.14159|round(2) }} {{ 2.675|round(2) }} {{ 3|round }} {{ 2.5|round(method="floor") }} {{ 2.1|round(method="ceil") }})JT",
             R"JT(2.0 4.0 3.14 2.67 3 2.0 3.0)JT"},
            {R"JT({{ ["a","A","b"]|unique|list }} {{ l|batch(2)|list }} {{ l|batch(2, "x")|list }} [{{ "a\nb\n\nc"|indent(2) }}] [{{ "a\nb"|indent(2, true) }}] [{{ "a\n\nb"|indent(2, blank=true) }}] {{ "one two  three"|wordcount }} [{{ "ab"|center(7) }}])JT",
             R"JT(['a', 'b'] [[3, 1], [2]] [[3, 1], [2, 'x']] [a
  b

  c] [  a
  b] [a
  
  b] 3 [   ab  ])JT"},
            {R"JT({{ l|min }} {{ l|max }} {{ l|sum }} {{ u|sum(attribute="v") }} {{ "%s-%d"|format("a", 3) }} {{ "x%sy" % 5 }} {{ "%.2f|%5d|%-4s|%r|%x" % (1, 42, "ab", "q", 255) }})JT",
             R"JT(1 3 6 1 a-3 x5y 1.00|   42|ab  |'q'|ff)JT"},
            {R"JT({{ "Hello"|lower is lower }} {{ "ABC" is upper }} {{ 4 is even }} {{ 9 is divisibleby 3 }} {{ 3 is odd }} {{ l is sequence }} {{ d is mapping }} {{ s is iterable }} {{ 1 is number }} {{ true is boolean }} {{ 1.0 is float }} {{ 1 is integer }} {{ true is integer }} {{ true is number }})JT",
             R"JT(True True True True True True True True True True True True False True)JT"},
            {R"JT({{ n is iterable }} {{ range is callable }} {{ x is iterable }} {{ x is sequence }} {{ true is true }} {{ 1 is true }} {{ false is false }} {{ 1 is eq 1 }} {{ 1 is ne 2 }} {{ 1 is lt 2 }} {{ 3 is ge 3 }} {{ 2 is in l }} {{ n is string }} {{ "a" is string }})JT", R"JT(False True True True True False True True True True True True False True)JT"},
            {R"JT({{ 1 == 1.0 }} {{ true == 1 }} {{ [1,2] == [1,2] }} {{ [1] == (1,) }} {{ "a" < "b" }} {{ 1 < 2 < 3 }} {{ 3 > 2 > 5 }} {{ not 1 }} {{ 0 or "x" }} {{ 1 and "y" }} {{ n or "z" }} {{ l + [4] }} {{ "ab" * 3 }} {{ 2 * [1] }} {{ -(3) }} {{ 1.5e3 }} {{ {"a": 1} == {"a": 1} }})JT",
             R"JT(True True True False True True False False x y z [3, 1, 2, 4] ababab [1, 1] -3 1500.0 True)JT"},
            {R"JT({{ d.get("a") }} {{ d.get("zz", 5) }} {{ d.get("zz") }} {{ d.keys()|list }} {{ d.values()|list }} {{ "  x ".strip() }} {{ "xxhixx".strip("x") }} {{ "  x ".lstrip() }}| {{ "  x ".rstrip() }}| {{ "Hi There".lower() }} {{ "hi".upper() }})JT",
             R"JT(2 5 None ['B', 'a', 'c'] [1, 2, None] x hi x |   x| hi there HI)JT"},
            {R"JT({{ "a-b-c".replace("-", "+") }} {{ "a-b-c".replace("-", "+", 1) }} {{ "abcabc".count("b") }} {{ "abc".find("c") }} {{ "abc".find("z") }} {{ "hello world".title() }} {{ "hELLO".capitalize() }} {{ ",".join(["a", "b"]) }})JT",
             R"JT(a+b+c a+b-c 2 2 -1 Hello World Hello a,b)JT"},
            {R"JT({{ ['a', "b'c", 'd"e', "f'g\"h", "\\"] }} {{ {"k": none, 1: 2.5, "t": (1, "x")} }} [{{ "\u00a0x\u3000"|trim }}] {{ ["\u00a0", "\n\t", "é", "\u2028", "\x01", "😀"] }})JT",
             R"JT(['a', "b'c", 'd"e', 'f\'g"h', '\\'] {'k': None, 1: 2.5, 't': (1, 'x')} [x] ['\xa0', '\n\t', 'é', '\u2028', '\x01', '😀'])JT"},
            {R"JT({% raw %}{{ not parsed }}{% endraw %} {# comment #}x {%- if true %} stripped {% endif -%} y {{- "z" -}} w)JT",
             R"JT({{ not parsed }} x stripped yzw)JT"},
            {R"JT({% with a = 5, b = 6 %}{{ a }}{{ b }}{% endwith %}{{ a }})JT", R"JT(56)JT"},
            {R"JT({% set ns = namespace(total=0, items=[]) %}{% for i in range(4) %}{% set ns.total = ns.total + i %}{% set ns.items = ns.items + [i] %}{% endfor %}{{ ns.total }} {{ ns.items }})JT",
             R"JT(6 [0, 1, 2, 3])JT"},
            {R"JT({% set v = 1 %}{% for i in [1, 2] %}{{ v }}{% set v = 2 %}{{ v }}{% endfor %}{{ v }})JT",
             R"JT(12121)JT"},
            {R"JT({% if false %}a{% elif n is none %}b{% else %}c{% endif %} {% if [] %}x{% elif {} %}y{% elif "" %}z{% else %}w{% endif %})JT",
             R"JT(b w)JT"},
            {R"JT({{ u|tojson }} {{ [[1, 2], {"a": {}}]|tojson(indent=1) }} {{ 0.1 + 0.2 }} {{ 1e-7|tojson }} {{ 100.0|tojson }})JT",
             R"JT([{"n": "x", "v": 1}, {"n": "y", "v": 0}] [
 [
  1,
  2
 ],
 {
  "a": {}
 }
] 0.30000000000000004 1e-07 100.0)JT"},
            {R"JT({{ l|map("string")|join("-") }} {{ u|sort(attribute="n", reverse=true)|map(attribute="n")|list }} {{ ["b","A","c"]|sort }} {{ ["b","A","c"]|sort(case_sensitive=true) }} {{ {"b":1,"A":2}|dictsort }} {{ {"b":1,"A":2}|dictsort(reverse=true) }} {{ {"b":1,"A":2}|dictsort(true) }} {{ {"x":2,"y":1}|dictsort(by="value") }})JT",
             R"JT(3-1-2 ['y', 'x'] ['A', 'b', 'c'] ['A', 'b', 'c'] [('A', 2), ('b', 1)] [('b', 1), ('A', 2)] [('A', 2), ('b', 1)] [('y', 1), ('x', 2)])JT"},
            {R"JT({{ [1, "a", none]|join(", ") }} {{ "abc"|list }} {{ d|list }} {{ d|first }} {{ "abc"|first }} {{ "abc"|last }} {{ "abc"|reverse }} {{ none|default("x") }} {{ none|default("x", true) }} {{ ""|d("e", true) }} {{ zz|d("u") }})JT",
             R"JT(1, a, None ['a', 'b', 'c'] ['B', 'a', 'c'] B a c cba None x e u)JT"},
            {R"JT({{ 10 // 3 }} {{ 10 % 3 }} {{ -10 % 3 }} {{ 10.0 % 3 }} {{ 2 ** 0.5 }} {{ 1 - 0.9 }} {{ 3 * 1.1 }} {{ 9007199254740993 }} {{ 1e308 * 10 }} {{ -1e308 * 10 }})JT",
             R"JT(3 1 2 1.0 1.4142135623730951 0.09999999999999998 3.3000000000000003 9007199254740993 inf -inf)JT"},
            {R"JT({{ "a" "b" }} {{ 'it''s' }} {{ "\x41\u00e9\n|" }} {{ 1_000 }} {{ 0.5e1 }})JT",
             R"JT(ab its Aé
| 1000 5.0)JT"},
            {R"JT({{ foo is not defined }} {{ l|selectattr("x", "defined")|list }} {{ [none, 1, 0, "", "a"]|select|list }} {{ [none, 1, 0]|reject("none")|list }})JT",
             R"JT(True [] [1, 'a'] [1, 0])JT"},
            {R"JT({% for x in l %}{{ loop.previtem is defined }}{% endfor %} {{ l|join }} {{ [[1],[2]]|map("first")|list }} {{ [1,2,3,4,5]|batch(2)|map("sum")|list }})JT",
             R"JT(FalseTrueTrue 312 [1, 2] [3, 7, 5])JT"},
            {R"JT({{ "%s" % none }} {{ "%s and %s" % ("a", "b") }} {{ "%5.1f%%" % 12.345 }} {{ "%d" % 3.9 }})JT",
             R"JT(None a and b  12.3% 3)JT"},
            {R"JT({{ strftime_now("%Y-%m-%d %A %B %j") }})JT", R"JT(2026-01-15 Thursday January 015)JT"},
};

TEST(JinjaEngine, MatchesPythonJinja) {
    ordered_json ctx = ordered_json::parse(kContext);
    RenderOptions options;
    options.clock = pinned_clock;
    for (const RenderCase& c : kCases) {
        SCOPED_TRACE(c.source);
        auto t = Template::parse(c.source);
        ASSERT_TRUE(t.ok()) << t.error().message;
        auto out = t->render(ctx, options);
        ASSERT_TRUE(out.ok()) << out.error().message;
        EXPECT_EQ(*out, c.expected);
    }
}

}  // namespace
}  // namespace ferry::text
