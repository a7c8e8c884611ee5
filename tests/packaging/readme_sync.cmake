# cmake -P check that the C++ program in README.md is exactly tests/packaging/consumer/readme_example.cpp,
# which the packaging tests compile and run. -DREADME=<README.md> -DEXAMPLE=<readme_example.cpp>
file(READ ${README} readme)
file(READ ${EXAMPLE} example)
string(FIND "${readme}" "```cpp\n${example}```" at)
if(at EQUAL -1)
  message(FATAL_ERROR "README.md does not contain ${EXAMPLE} verbatim in a ```cpp block; update one or the other")
endif()
message(STATUS "README.md's example is ${EXAMPLE}")
